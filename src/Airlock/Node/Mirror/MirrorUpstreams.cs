using Airlock.Remote;

namespace Airlock.Node.Mirror;

/// <summary>
/// One loaded registries.yaml as the mirror uses it: the endpoint resolution K3s applies (the same
/// <see cref="RegistryEndpoints"/> the hosts.toml rendering uses) and one registry client carrying the file's
/// credentials and TLS settings. Requests lease it; a reload retires it, and its client is disposed once the
/// last request in flight returns its lease, so a reload never cuts a transfer.
/// </summary>
internal sealed class MirrorUpstreams
{
    private readonly RegistryEndpoints _endpoints;
    private int _leases = 1;

    public MirrorUpstreams(RegistriesFile registries, MirrorOptions options)
    {
        ArgumentNullException.ThrowIfNull(registries);
        Registries = registries;
        _endpoints = new RegistryEndpoints(registries, options.DisableDefaultEndpoint);
        var remote = new RemoteOptions
        {
            ConnectTimeout = options.ConnectTimeout,
            ResponseTimeout = options.ResponseTimeout,

            // Falling back to the next endpoint is the mirror's retry; one quick re-send covers a refused or reset
            // connection, never a timeout (those are not retried), and a Retry-After cannot park a pull.
            MaxAttempts = 2,
            RetryBaseDelay = TimeSpan.FromMilliseconds(100),
            MaxRetryDelay = TimeSpan.FromSeconds(1),
            UserAgent = "airlock-mirror",
            TimeProvider = options.TimeProvider,
            LoggerFactory = options.LoggerFactory,
        };
        Client = new RegistryClient(RegistriesClientOptions.Apply(remote, registries));
    }

    public RegistriesFile Registries { get; }

    public RegistryClient Client { get; }

    /// <summary>The endpoints for <paramref name="registry"/> in the order containerd would try them.</summary>
    public IReadOnlyList<ResolvedEndpoint> Resolve(string registry) => _endpoints.Resolve(registry);

    /// <summary>False once retired and drained; the caller then reads the current instance again.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var leases = Volatile.Read(ref _leases);
            if (leases == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _leases, leases + 1, leases) == leases)
            {
                return true;
            }
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0)
        {
            Client.Dispose();
        }
    }

    /// <summary>Gives up the owner's lease: disposes now when idle, else when the last request finishes.</summary>
    public void Retire() => Release();
}
