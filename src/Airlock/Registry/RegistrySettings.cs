using Airlock.Registry.Auth;
using Airlock.Tls;

namespace Airlock.Registry;

/// <summary>
/// A registry as an operator configures it (<c>airlock registry</c>'s flags, config.yaml, <c>AIRLOCK_*</c>; an
/// embedded registry): the serving options as they are, plus the TLS and authentication material named by path.
/// <see cref="RegistryServer.StartAsync(RegistrySettings, Microsoft.Extensions.Logging.ILoggerFactory, CancellationToken)"/>
/// loads that material, wires the token endpoint and the pull-through cache's private repositories into the
/// access policy, and starts the server, so every host of a registry composes it the same way.
/// </summary>
public sealed record RegistrySettings
{
    /// <summary>
    /// Data directory, listen address, limits, GC schedule, pull-through upstreams, extra endpoints. Leave
    /// <see cref="RegistryServerOptions.AccessController"/> to <see cref="Auth"/>; a <see cref="RegistryServerOptions.Certificate"/>
    /// given here (e.g. one a cluster CA issued) is served when no TLS file is named.
    /// </summary>
    public required RegistryServerOptions Server { get; init; }

    /// <summary>
    /// Users, access rules, anonymous pulls, tokens. The token signing key defaults to
    /// <c>&lt;data-dir&gt;/registry/token/key.pem</c>; caches of private upstreams are always added to
    /// <see cref="RegistryAuthOptions.AuthenticatedOnly"/>.
    /// </summary>
    public RegistryAuthOptions Auth { get; init; } = new();

    /// <summary><c>--tls-cert</c>: PEM certificate (chain) to serve HTTPS with; needs <see cref="TlsKeyPath"/>.</summary>
    public string? TlsCertificatePath { get; init; }

    /// <summary><c>--tls-key</c>: PEM private key of <see cref="TlsCertificatePath"/>.</summary>
    public string? TlsKeyPath { get; init; }

    /// <summary><c>--tls-self-signed</c>: a certificate from Airlock's own CA under <c>&lt;data-dir&gt;/registry/tls</c>.</summary>
    public bool TlsSelfSigned { get; init; }

    /// <summary><c>--tls-san</c>: extra DNS names or IPs of the self-signed certificate.</summary>
    public IReadOnlyList<string> TlsSubjectAlternativeNames { get; init; } = [];

    /// <summary>Where Airlock's own CA and the server certificate it issues live (<see cref="TlsSelfSigned"/>).</summary>
    public string SelfSignedDirectory => RegistryCertificate.Directory(Server.DataDirectory);

    /// <summary>The token signing key in effect: <see cref="RegistryAuthOptions.TokenKeyPath"/> or the data directory's.</summary>
    public string TokenKeyPath => Auth.TokenKeyPath ?? Path.Combine(Server.DataDirectory, "registry", "token", "key.pem");

    /// <summary>
    /// Every problem found without reading a file, at once; empty when the registry can be started. Problems in
    /// the files themselves (certificates, users, access rules) are reported when they are read, at start.
    /// </summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>(Server.Validate(authenticated: Auth.HtpasswdPath is not null || Server.AccessController is not AllowAllAccessController));
        if ((TlsCertificatePath is null) != (TlsKeyPath is null))
        {
            problems.Add("--tls-cert and --tls-key must be given together");
        }

        if (TlsSelfSigned && (TlsCertificatePath is not null || TlsKeyPath is not null))
        {
            problems.Add("--tls-self-signed and --tls-cert/--tls-key exclude each other");
        }

        if (Server.Certificate is not null && (TlsSelfSigned || TlsCertificatePath is not null))
        {
            problems.Add("a server certificate was given both as an object and by --tls-cert/--tls-self-signed; give one");
        }

        if (TlsSubjectAlternativeNames.Count > 0 && !TlsSelfSigned)
        {
            problems.Add("--tls-san names the self-signed certificate's extra names; it needs --tls-self-signed");
        }

        if (Server.AccessController is not AllowAllAccessController && Auth.HtpasswdPath is not null)
        {
            problems.Add("an access controller was given both as an object and by --htpasswd; give one");
        }

        return problems;
    }

    /// <summary>The certificate material named by the settings; null for plain HTTP or a certificate given as an object.</summary>
    internal ServerTlsMaterial? LoadTls(TimeProvider time, Microsoft.Extensions.Logging.ILogger logger) =>
        TlsCertificatePath is not null ? ServerCertificates.LoadFiles(TlsCertificatePath, TlsKeyPath!, time)
        : TlsSelfSigned ? RegistryCertificate.EnsureSelfSigned(Server.DataDirectory, TlsSubjectAlternativeNames, time, logger)
        : null;
}
