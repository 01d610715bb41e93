using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Airlock.Registry.Auth;
using Airlock.Registry.PullThrough;
using Microsoft.AspNetCore.Http;

namespace Airlock.Registry;

/// <summary>An extra endpoint served beside the distribution API (the token service, a web UI).</summary>
public sealed record RegistryEndpoint(string Path, RequestDelegate Handler);

/// <summary>Everything <see cref="RegistryServer"/> needs, bound from flags, config.yaml and env by the CLI.</summary>
public sealed record RegistryServerOptions
{
    public const int DefaultMaxManifestBytes = 4 << 20;

    /// <summary>The data directory; the registry keeps its content under <c>registry/</c> in it.</summary>
    public required string DataDirectory { get; init; }

    public IPEndPoint Listen { get; init; } = new(IPAddress.Any, 5000);

    /// <summary>Serve HTTPS with this certificate (it must carry its private key); plain HTTP when null.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>Intermediate certificates sent after <see cref="Certificate"/> (e.g. a cross-signed CA).</summary>
    public X509Certificate2Collection? CertificateChain { get; init; }

    /// <summary>
    /// With HTTPS: ask clients for a certificate and accept only those this returns true for (the handshake fails
    /// otherwise); a client may still send none, and the <see cref="AccessController"/> decides about those. Null: clients
    /// are not asked for certificates.
    /// </summary>
    public Func<X509Certificate2, X509Chain?, SslPolicyErrors, bool>? ClientCertificateValidation { get; init; }

    /// <summary>Refuse every write (405), as distribution's read-only maintenance mode.</summary>
    public bool ReadOnly { get; init; }

    public int MaxManifestBytes { get; init; } = DefaultMaxManifestBytes;

    /// <summary>Run garbage collection this often while serving; null disables the schedule.</summary>
    public TimeSpan? GcInterval { get; init; }

    /// <summary>Blobs, links and upload sessions younger than this are never collected.</summary>
    public TimeSpan GcGrace { get; init; } = TimeSpan.FromHours(1);

    public IAccessController AccessController { get; init; } = AllowAllAccessController.Instance;

    /// <summary>Endpoints matched by exact path before the distribution API (e.g. <c>/token</c>).</summary>
    public IReadOnlyList<RegistryEndpoint> ExtraEndpoints { get; init; } = [];

    /// <summary>How long shutdown waits for transfers in flight.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Send whole blobs over plain HTTP with sendfile(2) on the raw socket.</summary>
    public bool ZeroCopy { get; init; } = true;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Make the registry a pull-through cache of these upstreams (<c>--proxy</c>); null for none.</summary>
    public PullThroughOptions? PullThrough { get; init; }

    /// <summary>
    /// The repositories only authenticated clients may read (caches of private upstreams); give the access
    /// policy the same instance (<see cref="RegistryAuthOptions.AuthenticatedOnly"/> = its Contains), so marks
    /// loaded from the store at start and made while serving reach it. Null: one made from <see cref="PullThrough"/>.
    /// </summary>
    public PrivateRepositories? PrivateRepositories { get; init; }

    /// <summary>Serve the web console under <c>/ui/</c> (<c>--ui</c>); the JSON API under <c>/api/</c> is served either way.</summary>
    public bool Console { get; init; } = true;

    /// <summary>
    /// Who may use the console and the JSON API: the same users and rules as <see cref="AccessController"/>, in a
    /// scheme a browser speaks (<see cref="RegistryAuthentication.ConsoleAccessController"/>). Null: <see cref="AccessController"/>.
    /// </summary>
    public IAccessController? ConsoleAccessController { get; init; }

    /// <summary>The cluster the console's cluster page shows; null (no cluster server composed in) hides it.</summary>
    public Api.IClusterView? Cluster { get; init; }

    /// <summary>How often the store's size is recorded for the console's storage page (also after every collection).</summary>
    public TimeSpan StorageSampleInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Every problem with these options at once; empty when they can be used.</summary>
    public IReadOnlyList<string> Validate() => Validate(authenticated: AccessController is not AllowAllAccessController);

    /// <summary>
    /// As <see cref="Validate()"/>, judging a private upstream by <paramref name="authenticated"/>: whether the
    /// registry will authenticate clients (<see cref="RegistrySettings"/> knows before its access controller exists).
    /// </summary>
    internal IReadOnlyList<string> Validate(bool authenticated)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            problems.Add("--data-dir must not be empty");
        }

        if (MaxManifestBytes <= 0)
        {
            problems.Add("--max-manifest-bytes must be positive");
        }

        if (GcInterval is { } interval && interval <= TimeSpan.Zero)
        {
            problems.Add("--gc-interval must be positive");
        }

        if (StorageSampleInterval <= TimeSpan.Zero)
        {
            problems.Add("the storage sample interval must be positive");
        }

        if (GcGrace < TimeSpan.Zero)
        {
            problems.Add("--gc-grace must not be negative");
        }

        if (Certificate is { HasPrivateKey: false })
        {
            problems.Add("the TLS certificate has no private key");
        }

        if (ClientCertificateValidation is not null && Certificate is null)
        {
            problems.Add("client certificates need HTTPS: give the registry a certificate");
        }

        if (PullThrough is { } pullThrough)
        {
            problems.AddRange(pullThrough.Validate());
            if (!authenticated && pullThrough.Upstreams.FirstOrDefault(pullThrough.IsPrivate) is { } secret)
            {
                problems.Add($"--proxy {secret.Registry}={secret.Address} has credentials in --registries, but this registry has no authentication: " +
                    "anyone could pull that private content through it; add --htpasswd (its content is then never served to anonymous clients)");
            }
        }

        return problems;
    }
}
