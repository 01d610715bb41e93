using System.Net;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Content.S3;
using Airlock.Hosting;
using Airlock.Registry.Auth;
using Airlock.Registry.PullThrough;
using Airlock.Tls;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Registry;

/// <summary>
/// The registry on Kestrel, startable in-process (tests, the CLI): listens, serves the distribution API
/// through one request delegate, runs scheduled garbage collection, and on stop lets transfers in flight
/// finish within the shutdown timeout.
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    private readonly KestrelHost _host;
    private readonly CancellationTokenSource _stopping;
    private readonly Task _collection;
    private readonly Task _sampling;
    private readonly RegistryApplication _application;
    private IDisposable? _authentication;
    private bool _stopped;

    private RegistryServer(KestrelHost host, RegistryApplication application, IRegistryStore storage, CancellationTokenSource stopping, Task collection, Task sampling)
    {
        _host = host;
        _sampling = sampling;
        _application = application;
        Storage = storage;
        _stopping = stopping;
        _collection = collection;
    }

    /// <summary>The bound address, e.g. <c>http://127.0.0.1:41234</c> (the real port when 0 was asked for).</summary>
    public Uri Address => _host.Address;

    /// <summary>The store the registry serves (the composition root chose it: <see cref="OpenStoreAsync"/>).</summary>
    public IRegistryStore Storage { get; }

    /// <summary>The certificate loaded or issued from <see cref="RegistrySettings"/> (its CA is what nodes must trust); null otherwise.</summary>
    public ServerTlsMaterial? Tls { get; private set; }

    /// <summary>The host's services (tests look at how Kestrel is put together).</summary>
    internal IServiceProvider Services => _host.Services;

    /// <summary>
    /// Composes and starts a registry from what an operator configured: loads the TLS certificate (the given files,
    /// or one from Airlock's own CA), the users and access files, makes the token endpoint and keeps the caches of
    /// private upstreams from anonymous clients. Throws <see cref="ArgumentException"/> listing every problem of
    /// <see cref="RegistrySettings.Validate"/>, <see cref="TlsMaterialException"/> or <see cref="AuthConfigurationException"/>
    /// naming the file that cannot be used.
    /// </summary>
    public static async Task<RegistryServer> StartAsync(RegistrySettings settings, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var problems = settings.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems), nameof(settings));
        }

        var options = settings.Server;
        if (options.PullThrough is { Remote.LoggerFactory: NullLoggerFactory } pullThrough)
        {
            options = options with { PullThrough = pullThrough with { Remote = pullThrough.Remote with { LoggerFactory = loggerFactory } } };
        }

        // Also without pull-through: the store may hold caches of private upstreams from an earlier run.
        var privateRepositories = options.PrivateRepositories ?? new PrivateRepositories(options.PullThrough);
        var tls = settings.LoadTls(options.Time, loggerFactory.CreateLogger("Airlock.Registry.Tls"));
        var authenticatedOnly = settings.Auth.AuthenticatedOnly is { } given
            ? repository => given(repository) || privateRepositories.Contains(repository)
            : (Func<string, bool>)privateRepositories.Contains;
        var authentication = RegistryAuthentication.Create(
            settings.Auth with { TokenKeyPath = settings.TokenKeyPath, AuthenticatedOnly = authenticatedOnly },
            options.Time,
            loggerFactory);
        try
        {
            var server = await StartAsync(
                options with
                {
                    Certificate = tls?.ServerCertificate ?? options.Certificate,

                    // The intermediates an operator's --tls-cert file holds after the leaf (clients trusting only the root need them).
                    CertificateChain = tls is { Chain.Count: > 0 } ? tls.Chain : options.CertificateChain,
                    AccessController = settings.Auth.HtpasswdPath is null ? options.AccessController : authentication.AccessController,
                    ConsoleAccessController = settings.Auth.HtpasswdPath is null ? options.ConsoleAccessController : authentication.ConsoleAccessController,
                    ExtraEndpoints = authentication.TokenEndpoint is { } tokens
                        ? [new RegistryEndpoint(settings.Auth.Token.TokenPath, tokens.HandleAsync), .. options.ExtraEndpoints]
                        : options.ExtraEndpoints,
                    PrivateRepositories = privateRepositories,
                },
                loggerFactory,
                cancellationToken).ConfigureAwait(false);
            server.Tls = tls;
            server._authentication = authentication;
            return server;
        }
        catch
        {
            authentication.Dispose();
            throw;
        }
    }

    public static async Task<RegistryServer> StartAsync(RegistryServerOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems), nameof(options));
        }

        var logger = loggerFactory.CreateLogger("Airlock.Registry");
        var storage = await OpenStoreAsync(options, logger, cancellationToken).ConfigureAwait(false);
        var privateRepositories = options.PrivateRepositories ?? new PrivateRepositories(options.PullThrough);
        await privateRepositories.LoadAsync(storage.Repositories, cancellationToken).ConfigureAwait(false);
        if (options.AccessController is AllowAllAccessController && privateRepositories.Marked.Count > 0)
        {
            await storage.DisposeAsync().ConfigureAwait(false);
            var marked = privateRepositories.Marked;
            var names = string.Join(", ", marked.Order(StringComparer.Ordinal).Take(5)) + (marked.Count > 5 ? $" and {marked.Count - 5} more" : string.Empty);
            throw new ArgumentException(
                $"the store holds repositories cached from a private upstream ({names}), but this registry has no " +
                "authentication: anyone could pull them; add --htpasswd (they are then never served to anonymous clients) or delete them from the store");
        }

        var application = new RegistryApplication(storage, options, privateRepositories, loggerFactory);
        KestrelHost host;
        try
        {
            host = await KestrelHost.StartAsync(new KestrelHostOptions
            {
                Listen = options.Listen,
                Certificate = options.Certificate,
                CertificateChain = options.CertificateChain,
                ClientCertificateValidation = options.ClientCertificateValidation,
                ShutdownTimeout = options.ShutdownTimeout,
                MaxRequestBodySize = null,

                // Bigger receive blocks make a push's body arrive in ~30x fewer recv calls (ReceiveBufferPool).
                LargeReceiveBuffers = true,
                LoggerFactory = loggerFactory,
            }, application.HandleAsync, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            application.Dispose();
            await storage.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        logger.LogInformation("Registry listening on {Address} with data in {DataDirectory}{ReadOnly}", host.BoundAddress, storage.Location, options.ReadOnly ? " (read-only)" : string.Empty);

        var stopping = new CancellationTokenSource();
        var collection = options.GcInterval is { } interval && !options.ReadOnly
            ? RunCollectionScheduleAsync(storage, interval, options.GcGrace, options.Time, logger, stopping.Token)
            : Task.CompletedTask;
        var sampling = RunStorageSamplingAsync(storage, options.StorageSampleInterval, options.Time, logger, stopping.Token);
        return new RegistryServer(host, application, storage, stopping, collection, sampling);
    }

    /// <summary>Stops accepting connections and waits (up to the shutdown timeout) for requests in flight.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _host.StopAsync(cancellationToken).ConfigureAwait(false);
        foreach (var schedule in new[] { _collection, _sampling })
        {
            try
            {
                await schedule.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The schedules end with the server.
            }
        }
    }

    /// <summary>Completes when the server was asked to stop (by <see cref="StopAsync"/> or the host).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _host.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _host.DisposeAsync().ConfigureAwait(false);
        _application.Dispose();
        _authentication?.Dispose();
        await Storage.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>Parses <c>host:port</c>, <c>[v6]:port</c> or <c>:port</c> (all addresses) as given to <c>--listen</c>.</summary>
    public static bool TryParseListen(string value, out IPEndPoint endPoint)
    {
        endPoint = null!;
        if (value.StartsWith(':'))
        {
            value = "0.0.0.0" + value;
        }

        if (IPEndPoint.TryParse(value, out var parsed) && value.Contains(':', StringComparison.Ordinal))
        {
            endPoint = parsed;
            return true;
        }

        var colon = value.LastIndexOf(':');
        if (colon > 0 && value[..colon] == "localhost" && int.TryParse(value[(colon + 1)..], out var port) && port is >= 0 and <= 65535)
        {
            endPoint = new IPEndPoint(IPAddress.Loopback, port);
            return true;
        }

        return false;
    }

    /// <summary>Records the store's size now (unless a process serving it just did) and every interval, for the console's storage page.</summary>
    private static async Task RunStorageSamplingAsync(IRegistryStore storage, TimeSpan interval, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        do
        {
            try
            {
                // Off the start-up path: measuring walks every blob.
                await Task.Run(() => storage.SampleAsync(interval / 2, cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Could not record the size of {Store} in its history: {Reason}", storage.Location, ex.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// The composition root of the store: the one place in the registry that names an implementation. Everything
    /// else (handlers, pull-through, garbage collection) sees <see cref="IRegistryStore"/> only.
    /// </summary>
    /// <summary>
    /// Opens the store for <c>airlock registry gc</c>: the data directory's (exclusively when no registry serves it), the
    /// shared S3 + etcd store beside its replicas, or a single replica's S3 store (exclusively: its registry is stopped).
    /// </summary>
    public static async Task<IRegistryStore> OpenStoreForCollectionAsync(string dataDirectory, S3StoreOptions? shared, ILogger logger, CancellationToken cancellationToken) =>
        shared is not null
            ? await S3RegistryStore.OpenAsync(shared, TimeProvider.System, logger, cancellationToken, forCollection: true).ConfigureAwait(false)
            : FileSystemRegistryStore.OpenForCollection(dataDirectory, TimeProvider.System, logger);

    private static async Task<IRegistryStore> OpenStoreAsync(RegistryServerOptions options, ILogger logger, CancellationToken cancellationToken) =>
        options.SharedStore is { } shared
            ? await S3RegistryStore.OpenAsync(shared, options.Time, logger, cancellationToken).ConfigureAwait(false)
            : FileSystemRegistryStore.Open(options.DataDirectory, options.Time, logger);

    private static async Task RunCollectionScheduleAsync(IRegistryStore storage, TimeSpan interval, TimeSpan grace, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        var collector = new GarbageCollector(storage, grace, logger);
        using var timer = new PeriodicTimer(interval, time);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                await collector.CollectAsync(dryRun: false, cancellationToken).ConfigureAwait(false);
            }
            catch (GarbageCollectionBusyException ex)
            {
                logger.LogWarning("Scheduled garbage collection skipped: {Reason}; it runs again in {Interval}", ex.Message, interval);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                logger.LogError(ex, "Scheduled garbage collection failed; it runs again in {Interval}", interval);
            }
        }
    }
}
