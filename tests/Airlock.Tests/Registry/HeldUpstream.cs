using Airlock.Tests.Remote;
using Microsoft.AspNetCore.Http;

namespace Airlock.Tests.Registry;

/// <summary>
/// A forwarding proxy in front of a real registry that answers as the registry does, except where the test
/// holds it: a blob body stops after <c>holdBlobsAfter</c> bytes until <see cref="Release"/> (so "the download
/// is not finished yet" is a fact, not a race against a fast machine), and <c>intercept</c> may answer a
/// request itself (return true) instead of forwarding it.
/// </summary>
internal sealed class HeldUpstream : IAsyncDisposable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    };

    private readonly TestHttpServer _server;
    private readonly HttpClient _client;
    private readonly TaskCompletionSource _holding = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HeldUpstream(TestHttpServer server, HttpClient client)
    {
        _server = server;
        _client = client;
    }

    public Uri Address => new($"http://{_server.Host}");

    /// <summary>Completes once a blob body was held (its first bytes sent, the rest waiting for <see cref="Release"/>).</summary>
    public Task Holding => _holding.Task;

    public void Release() => _released.TrySetResult();

    public static async Task<HeldUpstream> StartAsync(TestRegistry upstream, long holdBlobsAfter = long.MaxValue, Func<HttpContext, Task<bool>>? intercept = null)
    {
        var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = upstream.Server.Address };
        HeldUpstream? held = null;
        var server = await TestHttpServer.StartAsync(async context =>
        {
            if (intercept is not null && await intercept(context))
            {
                return;
            }

            await held!.ForwardAsync(context, holdBlobsAfter);
        });
        held = new HeldUpstream(server, client);
        return held;
    }

    private async Task ForwardAsync(HttpContext context, long holdBlobsAfter)
    {
        var request = context.Request;
        using var forward = new HttpRequestMessage(new HttpMethod(request.Method), request.Path.Value + request.QueryString.Value);
        if (request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0)
        {
            forward.Content = new StreamContent(request.Body);
        }

        foreach (var (name, values) in request.Headers)
        {
            if (!HopByHop.Contains(name) && !forward.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                forward.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }

        using var answer = await _client.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        var response = context.Response;
        response.StatusCode = (int)answer.StatusCode;
        foreach (var (name, values) in answer.Headers.Concat(answer.Content.Headers))
        {
            if (!HopByHop.Contains(name))
            {
                response.Headers[name] = values.ToArray();
            }
        }

        response.ContentLength = answer.Content.Headers.ContentLength;
        await using var body = await answer.Content.ReadAsStreamAsync(context.RequestAborted);
        var holds = HttpMethods.IsGet(request.Method) && request.Path.Value!.Contains("/blobs/sha", StringComparison.Ordinal) && answer.IsSuccessStatusCode;
        if (holds && answer.Content.Headers.ContentLength > holdBlobsAfter)
        {
            await CopyAsync(body, response.Body, holdBlobsAfter, context.RequestAborted);
            await response.Body.FlushAsync(context.RequestAborted);
            _holding.TrySetResult();
            await _released.Task.WaitAsync(context.RequestAborted);
        }

        await body.CopyToAsync(response.Body, context.RequestAborted);
    }

    private static async Task CopyAsync(Stream from, Stream to, long count, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (count > 0)
        {
            var read = await from.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), cancellationToken);
            if (read == 0)
            {
                return;
            }

            await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            count -= read;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Release();
        await _server.DisposeAsync();
        _client.Dispose();
    }
}
