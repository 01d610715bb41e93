using System.Net;
using System.Security.Cryptography.X509Certificates;
using Airlock.Cluster;
using Airlock.Cluster.Join;
using Airlock.Cluster.Supervisor;
using Airlock.Tests.Node.ImagesDirectory;
using Microsoft.Extensions.Logging;

namespace Airlock.Tests.Cluster;

/// <summary>
/// An <c>airlock server</c> in this process on a free loopback port, over real TLS, with its own data directory and a
/// clock the test moves; members join it in-process with their own data directories. Restartable on the same state.
/// </summary>
internal sealed class TestCluster : IAsyncDisposable
{
    private readonly List<ClusterMember> _members = [];

    private TestCluster(TempRoot root, ManualTimeProvider time)
    {
        Root = root;
        Time = time;
    }

    public TempRoot Root { get; }

    public ManualTimeProvider Time { get; }

    public string DataDirectory => Path.Combine(Root.Path, "server");

    public ServerDirectory Directory => new(DataDirectory);

    public ClusterServer Server { get; private set; } = null!;

    public RecordingLoggerProvider Log { get; } = new();

    public Uri Address => Server.Address;

    /// <summary>The server token as <c>server/token</c> holds it.</summary>
    public string Token => File.ReadAllText(Directory.Token).Trim();

    public static async Task<TestCluster> StartAsync(Func<ClusterServerOptions, ClusterServerOptions>? configure = null, ManualTimeProvider? time = null)
    {
        // Starting now: the CLI and outside tools check the certificates against the real clock.
        var cluster = new TestCluster(TempRoot.Create("airlock-cluster-"), time ?? new ManualTimeProvider(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds())));
        await cluster.StartServerAsync(configure);
        return cluster;
    }

    public ClusterServerOptions Options(Func<ClusterServerOptions, ClusterServerOptions>? configure = null)
    {
        var options = new ClusterServerOptions
        {
            DataDirectory = DataDirectory,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            NodeName = "test-server",
            Time = Time,
            LoggerFactory = LoggerFactory.Create(logging => logging.AddProvider(Log)),
        };
        return configure is null ? options : configure(options);
    }

    public async Task StartServerAsync(Func<ClusterServerOptions, ClusterServerOptions>? configure = null) =>
        Server = await ClusterServer.StartAsync(Options(configure), CancellationToken.None);

    /// <summary>Stops the server (members keep running) and starts it again on the same data directory and port.</summary>
    public async Task RestartServerAsync(Action? whileStopped = null, Func<ClusterServerOptions, ClusterServerOptions>? configure = null)
    {
        var port = Server.Address.Port;
        await Server.DisposeAsync();
        whileStopped?.Invoke();
        await StartServerAsync(options => (configure?.Invoke(options) ?? options) with { Listen = new IPEndPoint(IPAddress.Loopback, port) });
    }

    /// <summary>Options for a member with its own data directory under this cluster's folder.</summary>
    public ClusterMemberOptions MemberOptions(string name, string? token = null) => new()
    {
        Server = Address,
        Token = token ?? Token,
        DataDirectory = Path.Combine(Root.Path, "nodes", name),
        NodeName = name,
        Addresses = [IPAddress.Parse("192.0.2.10")],
        Version = "test",
        Time = Time,
        RequestTimeout = TimeSpan.FromSeconds(20),
    };

    public async Task<ClusterMember> JoinAsync(ClusterMemberOptions options)
    {
        var member = await ClusterMember.StartAsync(options, CancellationToken.None);
        _members.Add(member);
        return member;
    }

    public Task<ClusterMember> JoinAsync(string name) => JoinAsync(MemberOptions(name));

    /// <summary>An HTTPS client of the supervisor that trusts the cluster CA and presents no certificate.</summary>
    public HttpClient CreateClient(X509Certificate2? clientCertificate = null)
    {
        var trusted = Server.Pki.ServerCa.Trusted;
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = Airlock.Cluster.Pki.CaTrust.Callback(() => trusted, Time, checkName: true);
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        return new HttpClient(handler) { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(20) };
    }

    /// <summary>Every file under <paramref name="directory"/> (relative path → bytes), to show nothing was written.</summary>
    public static Dictionary<string, byte[]> Snapshot(string directory) =>
        !System.IO.Directory.Exists(directory)
            ? []
            : System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
                .Where(f => !f.EndsWith(".lock", StringComparison.Ordinal))
                .ToDictionary(f => Path.GetRelativePath(directory, f), File.ReadAllBytes);

    public static void AssertUnchanged(Dictionary<string, byte[]> before, string directory)
    {
        var after = Snapshot(directory);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (file, bytes) in before)
        {
            Assert.True(bytes.AsSpan().SequenceEqual(after[file]), $"{file} changed");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var member in _members)
        {
            member.Dispose();
        }

        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        Root.UnmountAndDelete();
    }
}

/// <summary>Keeps every formatted log line.</summary>
internal sealed class RecordingLoggerProvider : ILoggerProvider
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return _lines.ToList();
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(RecordingLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._lines)
            {
                owner._lines.Add(formatter(state, exception));
            }
        }
    }
}

/// <summary>JSON helpers for raw supervisor calls (requests a real node would never make).</summary>
internal static class SupervisorCalls
{
    public static async Task<(HttpStatusCode Status, string Body)> JoinAsync(HttpClient client, string user, string secret, JoinRequest request)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, SupervisorPaths.Join)
        {
            Content = new ByteArrayContent(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(request, SupervisorJson.Default.JoinRequest)),
        };
        message.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{secret}")));
        using var response = await client.SendAsync(message);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
