using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Airlock.Node;
using Airlock.Node.Mirror;
using Airlock.Oci;
using Airlock.Registry.Auth;
using Airlock.Remote;
using Airlock.Tests.Node.Containerd;
using Airlock.Tests.Registry;
using Microsoft.AspNetCore.Http;
using TestImage = Airlock.Tests.Node.Containerd.TestImage;

namespace Airlock.Tests.Node.Mirror;

/// <summary>Records every request a registry is asked (method and path), as the upstream's own log would.</summary>
internal sealed class RecordingAccess : IAccessController
{
    public ConcurrentQueue<string> Requests { get; } = new();

    public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, IReadOnlyList<AccessRequest> requested, CancellationToken cancellationToken)
    {
        Requests.Enqueue($"{context.Request.Method} {context.Request.Path}");
        return ValueTask.FromResult(AccessDecision.Allow(null));
    }
}

/// <summary>A real Airlock registry on a loopback port that records what it is asked.</summary>
internal sealed class UpstreamRegistry : IAsyncDisposable
{
    private UpstreamRegistry(TestRegistry registry, RecordingAccess access)
    {
        Registry = registry;
        Access = access;
    }

    public TestRegistry Registry { get; }

    public RecordingAccess Access { get; }

    /// <summary>host:port, usable as a registry name and as a scheme-less registries.yaml endpoint (loopback → http).</summary>
    public string Host => Registry.Server.Address.Authority;

    public static async Task<UpstreamRegistry> StartAsync()
    {
        var access = new RecordingAccess();
        return new UpstreamRegistry(await TestRegistry.StartAsync(o => o with { AccessController = access }), access);
    }

    /// <summary>Pushes a fresh test image (unique second layer) as <c>repository:tag</c>; returns it.</summary>
    public async Task<TestImage> PushAsync(string repository, string tag, string text)
    {
        var image = TestImage.Build(text);
        await using var target = RemoteImageStore.Create(ImageReference.Parse($"{Host}/{repository}:{tag}"), new RemoteOptions());
        await image.CopyToAsync(target, tag, CancellationToken.None);
        Access.Requests.Clear();
        return image;
    }

    /// <summary>Requests for repository paths (<c>/v2/&lt;name&gt;/…</c>), not pings.</summary>
    public IReadOnlyList<string> RepositoryRequests => Access.Requests.Where(r => r.Contains("/manifests/", StringComparison.Ordinal) || r.Contains("/blobs/", StringComparison.Ordinal)).ToList();

    public ValueTask DisposeAsync() => Registry.DisposeAsync();
}

internal static class MirrorTestBed
{
    public static RegistriesFile Parse(string yaml)
    {
        var (file, problems) = RegistriesFileReader.Parse(yaml, "registries.yaml");
        Assert.DoesNotContain(problems, p => p.Severity >= ProblemSeverity.Error);
        return file;
    }

    public static Task<NodeMirror> StartMirrorAsync(RegistriesFile file, bool disableDefault, TimeSpan? connectTimeout = null, TimeSpan? responseTimeout = null) =>
        NodeMirror.StartAsync(file, new MirrorOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            DisableDefaultEndpoint = disableDefault,
            ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(2),
            ResponseTimeout = responseTimeout ?? TimeSpan.FromSeconds(10),
        }, CancellationToken.None);

    public static IPEndPoint EndPointOf(NodeMirror mirror) => new(IPAddress.Parse(mirror.Address.Host), mirror.Address.Port);

    /// <summary>Renders the certs.d tree as <c>airlock registries render</c> does into <paramref name="dataDir"/>; returns certs.d.</summary>
    public static async Task<string> RenderAsync(string dataDir, RegistriesFile file, bool disableDefault, IPEndPoint? mirror)
    {
        var options = new ContainerdConfigOptions { DataDir = dataDir, Schema = ContainerdConfigSchema.V2 };
        var plan = await ContainerdRenderer.PlanAsync(file, options, disableDefault, CancellationToken.None, nodeMirror: mirror);
        await ContainerdRenderer.ApplyAsync(plan, CancellationToken.None);
        return options.CertsDir;
    }

    /// <summary>A loopback port nothing listens on (connections are refused).</summary>
    // Sockets bound to the ports RefusingPort handed out, kept for the life of the test process.
    private static readonly List<Socket> Refusing = [];

    /// <summary>
    /// A loopback port that refuses connections and stays that way: it is bound, never listened on, and kept, so no
    /// server the tests start later on port 0 can be given it (with a port merely found free, a full run once pulled
    /// in 253 ms without reaching the silent endpoint listed after the refused one: something was serving on that port).
    /// </summary>
    public static int RefusingPort()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        lock (Refusing)
        {
            Refusing.Add(socket);
        }

        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}

/// <summary>A loopback port that accepts TCP connections (the kernel completes the handshake) but never answers.</summary>
internal sealed class Blackhole : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public Blackhole() => _listener.Start(backlog: 64);

    public string Host => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Whether a connection reached it (and is waiting, unanswered).</summary>
    public bool WasContacted => _listener.Pending();

    public void Dispose() => _listener.Stop();
}

/// <summary>
/// An HTTP/1.1 upstream on a loopback port that answers one request with a Content-Length it never reaches: it sends
/// the given pieces one per <see cref="SendNext"/> call, then holds the connection open, silent, until disposed.
/// </summary>
internal sealed class TricklingUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly SemaphoreSlim _next = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;

    public TricklingUpstream(IReadOnlyList<byte[]> pieces, long contentLength)
    {
        _listener.Start();
        _serving = ServeAsync(pieces, contentLength, _stop.Token);
    }

    public string Host => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public void SendNext() => _next.Release();

    private async Task ServeAsync(IReadOnlyList<byte[]> pieces, long contentLength, CancellationToken ct)
    {
        using var socket = await _listener.AcceptSocketAsync(ct);
        await using var stream = new NetworkStream(socket);
        var head = new List<byte>();
        var one = new byte[1];
        while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await stream.ReadAsync(one, ct) == 0)
            {
                return;
            }

            head.Add(one[0]);
        }

        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(
            $"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {contentLength}\r\n\r\n"), ct);
        foreach (var piece in pieces)
        {
            await _next.WaitAsync(ct);
            await stream.WriteAsync(piece, ct);
            await stream.FlushAsync(ct);
        }

        await Task.Delay(Timeout.Infinite, ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _serving;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException)
        {
        }

        _stop.Dispose();
        _next.Dispose();
    }
}
