using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
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
    private readonly WebApplication _app;
    private readonly MirrorOptions _options;
    private readonly ILogger _logger;
    private readonly MirrorHandler _handler;
    private bool _stopped;

    private NodeMirror(WebApplication app, MirrorOptions options, MirrorHandler handler, Uri address, ILogger logger)
    {
        _app = app;
        _options = options;
        _handler = handler;
        Address = address;
        _logger = logger;
    }

    /// <summary>The bound address, e.g. <c>http://127.0.0.1:5100/</c> (the real port when 0 was asked for).</summary>
    public Uri Address { get; }

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
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(options.LoggerFactory);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.WebHost.UseKestrelCore();
        builder.WebHost.UseShutdownTimeout(TimeSpan.FromSeconds(5));
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxResponseBufferSize = MirrorHandler.ResponseBufferSize;
            kestrel.Listen(options.Listen, listen => listen.Protocols = HttpProtocols.Http1);
        });

        var app = builder.Build();
        var handler = new MirrorHandler(upstreams, options);
        app.Run(handler.HandleAsync);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            upstreams.Retire();
            throw;
        }

        options.BlobSource?.Attach(handler);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var address = new Uri(bound.Replace("://[::]", "://[::1]", StringComparison.Ordinal).Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal));
        MirrorLog.Listening(logger, address, registries.Mirrors.Count + registries.Configs.Count, registries.Source);
        return new NodeMirror(app, options, handler, address, logger);
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
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops listening and lets transfers in flight finish (up to 5 s).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        await _app.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _handler.Current.Retire();
    }
}
