using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Airlock.Oci;
using Airlock.Remote;

namespace Airlock.Tests.Remote;

/// <summary>An endpoint that does not answer is abandoned within the configured time, not after minutes.</summary>
public sealed class TimeoutTests
{
    [Fact]
    public async Task A_server_that_accepts_but_never_answers_is_abandoned_after_the_response_timeout()
    {
        // The kernel completes the handshake from the backlog; nobody ever reads or writes.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var client = new RegistryClient(new RemoteOptions
        {
            ResponseTimeout = TimeSpan.FromMilliseconds(500),
            // A retry would wait this long, far past the bound below.
            RetryBaseDelay = TimeSpan.FromSeconds(20),
        });

        var repo = ImageReference.Parse($"127.0.0.1:{port}/team/app");
        await Assert.ThrowsAsync<RegistryException>(() => client.ResolveAsync(repo, "1", default)); // warms the code paths up
        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.ResolveAsync(repo, "1", default));
        // Generous for a loaded machine, yet far below a retry's delay or the 10 s default connect timeout.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        Assert.IsType<TimeoutException>(ex.InnerException);
        Assert.Contains($"127.0.0.1:{port}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_endpoint_that_never_completes_the_TCP_handshake_is_abandoned_after_the_connect_timeout()
    {
        // A listener whose accept queue is full drops further SYNs: a black hole on loopback.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        var fillers = new List<Socket>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
                try
                {
                    await filler.ConnectAsync(endpoint, cts.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            using var client = new RegistryClient(new RemoteOptions
            {
                ConnectTimeout = TimeSpan.FromMilliseconds(500),
                ResponseTimeout = TimeSpan.FromSeconds(30),
                RetryBaseDelay = TimeSpan.FromSeconds(20),
            });
            var repo = ImageReference.Parse($"127.0.0.1:{endpoint.Port}/team/app");
            await Assert.ThrowsAsync<RegistryException>(() => client.ResolveAsync(repo, "1", default)); // warms the code paths up
            var watch = Stopwatch.StartNew();
            var ex = await Assert.ThrowsAsync<RegistryException>(() => client.ResolveAsync(repo, "1", default));
            // One connect timeout, not one per retry attempt.
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}: {ex.Message}");
            Assert.Null(ex.StatusCode);
            Assert.Contains("ConnectTimeout", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var filler in fillers)
            {
                filler.Dispose();
            }
        }
    }
}
