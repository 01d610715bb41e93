using Airlock.Hosting;
using Microsoft.Extensions.Logging;

namespace Airlock.Node.Mirror;

/// <summary>
/// The node-local mirror: stock containerd is pointed at it (hosts.toml <c>server</c>, see
/// <see cref="ContainerdRenderer"/>'s mirror address) for every registry whose registries.yaml needs what stock
/// containerd lacks — <c>rewrite</c> rules or no fallback to the default endpoint — and it applies the file itself.
/// Start with <see cref="StartAsync"/>, swap the file with <see cref="Reload"/>, stop by disposing.
/// </summary>
public sealed class NodeMirror : IAsyncDisposable
{
    private readonly KestrelHost _host;
    private readonly MirrorOptions _options;
    private readonly ILogger _logger;
    private readonly MirrorHandler _handler;

    private NodeMirror(KestrelHost host, MirrorOptions options, MirrorHandler handler, ILogger logger)
    {
        _host = host;
        _options = options;
        _handler = handler;
        _logger = logger;
    }

    /// <summary>The bound address, e.g. <c>http://127.0.0.1:5100/</c> (the real port when 0 was asked for).</summary>
    public Uri Address => _host.Address;

    /// <summary>What hosts.toml's <c>server</c> says for a registry this mirror serves (<c>http://127.0.0.1:5100/v2</c>).</summary>
    public string ServerUrl => MirrorOptions.ServerUrl(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(Address.Host.Trim('[', ']')), Address.Port));

    /// <summary>The registries.yaml being served.</summary>
    public RegistriesFile Registries => _handler.Current.Registries;

    /// <summary>
    /// Listens and serves <paramref name="registries"/>. Throws <see cref="ArgumentException"/> for bad options and
    /// <see cref="InvalidOperationException"/> when a CA or client certificate named in the file cannot be loaded.
    /// </summary>
    public static async Task<NodeMirror> StartAsync(RegistriesFile registries, MirrorOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registries);
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems), nameof(options));
        }

        var logger = options.LoggerFactory.CreateLogger("Airlock.Node.Mirror");
        var upstreams = new MirrorUpstreams(registries, options);
        var handler = new MirrorHandler(upstreams, options);
        KestrelHost host;
        try
        {
            host = await KestrelHost.StartAsync(new KestrelHostOptions
            {
                Listen = options.Listen,
                ShutdownTimeout = TimeSpan.FromSeconds(5),
                MaxResponseBufferSize = MirrorHandler.ResponseBufferSize,
                LoggerFactory = options.LoggerFactory,
            }, handler.HandleAsync, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            upstreams.Retire();
            throw;
        }

        options.BlobSource?.Attach(handler);
        var address = host.Address;
        MirrorLog.Listening(logger, address, registries.Mirrors.Count + registries.Configs.Count, registries.Source);
        return new NodeMirror(host, options, handler, logger);
    }

    /// <summary>
    /// Serves <paramref name="registries"/> from now on. Requests in flight finish with the file they started with.
    /// Throws (and keeps serving the old file) when a CA or client certificate in the new file cannot be loaded.
    /// </summary>
    public void Reload(RegistriesFile registries)
    {
        ArgumentNullException.ThrowIfNull(registries);
        _handler.Swap(new MirrorUpstreams(registries, _options)).Retire();
        MirrorLog.Reloaded(_logger, registries.Source, registries.Mirrors.Count + registries.Configs.Count);
    }

    /// <summary>Completes when the mirror was asked to stop.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _host.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops listening and lets transfers in flight finish (up to 5 s).</summary>
    public Task StopAsync(CancellationToken cancellationToken) => _host.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync().ConfigureAwait(false);
        _handler.Current.Retire();
    }
}
