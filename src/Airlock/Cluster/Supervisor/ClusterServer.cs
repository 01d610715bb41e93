using System.Net;
using Airlock.Cluster.EmbeddedRegistry;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Tokens;
using Airlock.Hosting;
using Airlock.IO;
using Airlock.Registry;
using Microsoft.Extensions.Logging;

namespace Airlock.Cluster.Supervisor;

/// <summary>
/// <c>airlock server</c>: the cluster's root of trust and membership. At start it takes the data directory's server lock
/// (one server per data directory; certificate rotation waits for it to stop), opens or creates the PKI (renewing what is
/// near expiry), the tokens and the membership, then serves the supervisor API over HTTPS (mutual TLS for members) and,
/// with <see cref="ClusterServerOptions.EmbeddedRegistry"/>, the registry on the cluster's certificates, where nodes
/// authenticate with their client certificates.
/// </summary>
public sealed partial class ClusterServer : IAsyncDisposable
{
    private readonly ServerLock _lock;
    private readonly KestrelHost _host;
    private bool _stopped;
    private bool _disposed;

    private ClusterServer(ServerLock held, KestrelHost host, ServerPki pki, ClusterTokens tokens, MembershipStore membership, Uri address, RegistryServer? registry)
    {
        _lock = held;
        _host = host;
        Pki = pki;
        Tokens = tokens;
        Membership = membership;
        Address = address;
        Registry = registry;
    }

    public ServerPki Pki { get; }

    public ClusterTokens Tokens { get; }

    public MembershipStore Membership { get; }

    /// <summary>The supervisor API's bound address, e.g. <c>https://127.0.0.1:9443</c> (the real port when 0 was asked for).</summary>
    public Uri Address { get; }

    /// <summary>The embedded registry, when it runs.</summary>
    public RegistryServer? Registry { get; }

    public static async Task<ClusterServer> StartAsync(ClusterServerOptions options, CancellationToken cancellationToken)
    {
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, problems), nameof(options));
        }

        var logger = options.LoggerFactory.CreateLogger("Airlock.Cluster.Supervisor");
        var directory = new ServerDirectory(options.DataDirectory);
        if (Directory.Exists(options.DataDirectory))
        {
            DirectoryOwner.EnsureOwned(options.DataDirectory);
        }

        DirectoryOwner.EnsureOwned(directory.Root);
        var held = ServerLock.Acquire(directory, "this server cannot start");
        ServerPki? pki = null;
        KestrelHost? host = null;
        RegistryServer? registry = null;
        try
        {
            pki = ServerPki.Open(new ServerPkiOptions
            {
                Directory = directory,
                TlsSans = options.TlsSans,
                NodeName = options.NodeName,
                RenewWithin = options.RenewWithin,
                Time = options.Time,
                Logger = options.LoggerFactory.CreateLogger("Airlock.Cluster.Pki"),
            });
            var tokens = ClusterTokens.Ensure(directory, pki.ServerCa.Hash, options.Token, options.AgentToken, options.Time);
            var membership = MembershipStore.Open(directory, options.Time);
            var settings = new SupervisorSettings((int)Math.Ceiling(options.HeartbeatInterval.TotalSeconds), options.RenewWithin, options.Time);
            var api = new SupervisorApi(pki, tokens, membership, settings, logger);
            host = await StartSupervisorAsync(options, pki, api, cancellationToken).ConfigureAwait(false);
            var bound = host.BoundAddress;
            var address = host.Address;
            LogListening(logger, bound, directory.Root);

            if (options.EmbeddedRegistry is { } registryListen)
            {
                var certificate = pki[ClusterService.Registry];
                var clientCas = pki.ClientCa.Trusted;
                // The same composition as `airlock registry`, on the cluster's certificate and with members as its users.
                registry = await RegistryServer.StartAsync(new RegistrySettings
                {
                    Server = new RegistryServerOptions
                    {
                        DataDirectory = options.DataDirectory,
                        Listen = registryListen,
                        Certificate = certificate.Certificate,
                        CertificateChain = certificate.Chain,
                        ClientCertificateValidation = (presented, chain, errors) => CaTrust.Accepts(clientCas, presented, chain, errors, options.Time, checkName: false),
                        AccessController = new MemberAccessController(membership),
                        GcInterval = TimeSpan.FromHours(24),
                        Time = options.Time,
                    },
                }, options.LoggerFactory, cancellationToken).ConfigureAwait(false);
            }

            return new ClusterServer(held, host, pki, tokens, membership, address, registry);
        }
        catch
        {
            if (registry is not null)
            {
                await registry.DisposeAsync().ConfigureAwait(false);
            }

            if (host is not null)
            {
                await host.DisposeAsync().ConfigureAwait(false);
            }

            pki?.Dispose();
            held.Dispose();
            throw;
        }
    }

    private static Task<KestrelHost> StartSupervisorAsync(ClusterServerOptions options, ServerPki pki, SupervisorApi api, CancellationToken cancellationToken)
    {
        var serving = pki[ClusterService.Supervisor];
        var clientCas = pki.ClientCa.Trusted;
        return KestrelHost.StartAsync(new KestrelHostOptions
        {
            Listen = options.Listen,
            Certificate = serving.Certificate,
            CertificateChain = serving.Chain,

            // Optional: /cacerts and joins come from nodes that have no certificate yet.
            ClientCertificateValidation = (presented, chain, errors) => CaTrust.Accepts(clientCas, presented, chain, errors, options.Time, checkName: false),

            // Heartbeats may carry large advertisements (NodeAdvertisement.MaxDigests); joins are checked against less.
            MaxRequestBodySize = 32 << 20,
            ShutdownTimeout = TimeSpan.FromSeconds(5),
            LoggerFactory = options.LoggerFactory,
        }, api.HandleAsync, cancellationToken);
    }

    /// <summary>Stops serving; members keep their certificates and come back when a server starts again.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        if (Registry is not null)
        {
            await Registry.StopAsync(cancellationToken).ConfigureAwait(false);
        }

        await _host.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        if (Registry is not null)
        {
            await Registry.DisposeAsync().ConfigureAwait(false);
        }

        await _host.DisposeAsync().ConfigureAwait(false);
        Pki.Dispose();
        _lock.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Supervisor API listening on {Address}; cluster state in {Directory}")]
    private static partial void LogListening(ILogger logger, string address, string directory);
}
