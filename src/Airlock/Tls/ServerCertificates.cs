using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tls;

/// <summary>The certificate a server presents, the chain it sends with it, and the CA clients must trust.</summary>
public sealed class ServerTlsMaterial
{
    internal ServerTlsMaterial(X509Certificate2 serverCertificate, X509Certificate2Collection chain, string? caCertificatePath)
    {
        ServerCertificate = serverCertificate;
        Chain = chain;
        CaCertificatePath = caCertificatePath;
    }

    /// <summary>For Kestrel's <c>HttpsConnectionAdapterOptions.ServerCertificate</c>; carries its private key.</summary>
    public X509Certificate2 ServerCertificate { get; }

    /// <summary>Intermediate certificates that followed the leaf in an operator's certificate file
    /// (for <c>HttpsConnectionAdapterOptions.ServerCertificateChain</c>); empty for self-signed.</summary>
    public X509Certificate2Collection Chain { get; }

    /// <summary>The CA certificate clients must trust (self-signed mode); null for operator-supplied certificates.</summary>
    public string? CaCertificatePath { get; }
}

/// <summary>
/// A server's TLS certificate: either operator files (<c>--tls-cert</c>/<c>--tls-key</c>) or a self-signed CA
/// plus server certificate kept under a directory (<c>--tls-self-signed</c>), made once and renewed the way
/// K3s renews its own.
/// </summary>
public static partial class ServerCertificates
{
    public const string CaCertificateFile = "ca.crt";
    public const string CaKeyFile = "ca.key";
    public const string ServerCertificateFile = "server.crt";
    public const string ServerKeyFile = "server.key";

    public static readonly TimeSpan CaValidity = TimeSpan.FromDays(3650);
    public static readonly TimeSpan ServerValidity = TimeSpan.FromDays(365);

    /// <summary>K3s's rule: a certificate within 120 days of expiry is renewed at start.</summary>
    public static readonly TimeSpan RenewBefore = TimeSpan.FromDays(120);

    /// <summary>
    /// Loads or creates <c>ca.crt</c>, <c>ca.key</c>, <c>server.crt</c>, <c>server.key</c> in
    /// <paramref name="directory"/> (e.g. <c>&lt;data-dir&gt;/registry/tls</c>). The CA (10 years, CN
    /// "<paramref name="commonName"/> CA") is made once and reused; an existing CA that is unreadable or does
    /// not match its key is an error rather than silently replaced, since clients trust it. The server
    /// certificate (365 days, CN <paramref name="commonName"/>; SANs localhost, 127.0.0.1, ::1, this host's
    /// name and <paramref name="extraNames"/>, where IP literals become IP SANs) is reissued when missing,
    /// invalid, not from this CA, lacking a wanted name, or within <see cref="RenewBefore"/> of expiry.
    /// </summary>
    public static ServerTlsMaterial EnsureSelfSigned(string directory, string commonName, IEnumerable<string> extraNames, TimeProvider timeProvider, ILogger? logger = null)
    {
        logger ??= NullLogger.Instance;
        Directory.CreateDirectory(directory);
        var caCertificatePath = Path.Combine(directory, CaCertificateFile);
        var caKeyPath = Path.Combine(directory, CaKeyFile);
        var serverCertificatePath = Path.Combine(directory, ServerCertificateFile);
        var serverKeyPath = Path.Combine(directory, ServerKeyFile);
        var (dnsNames, ipAddresses) = WantedNames(extraNames);

        using var ca = LoadOrCreateCa(caCertificatePath, caKeyPath, $"{commonName} CA", timeProvider, logger);
        var now = timeProvider.GetUtcNow();
        var server = TryLoadServer(serverCertificatePath, serverKeyPath);
        var reason = server is null ? "missing or unreadable"
            : !ca.Verifies(server) ? "not valid under the CA"
            : server.NotAfter - now <= RenewBefore ? $"expires {server.NotAfter.ToUniversalTime():O}"
            : !Covers(server, dnsNames, ipAddresses) ? "lacks a wanted host name or address"
            : null;
        if (reason is null)
        {
            return new ServerTlsMaterial(server!, [], Path.GetFullPath(caCertificatePath));
        }

        server?.Dispose();
        var issued = ca.Issue(new LeafCertificateRequest(commonName, dnsNames, ipAddresses, ServerValidity));
        PemFiles.Write(issued, serverCertificatePath, serverKeyPath);
        LogIssued(logger, serverCertificatePath, reason, issued.NotAfter.ToUniversalTime());
        return new ServerTlsMaterial(issued, [], Path.GetFullPath(caCertificatePath));
    }

    /// <summary>
    /// Loads <c>--tls-cert</c>/<c>--tls-key</c> PEM files (the certificate file may continue with its
    /// chain). Throws <see cref="TlsMaterialException"/> naming the file when missing, unreadable,
    /// malformed, mismatched, expired or not yet valid.
    /// </summary>
    public static ServerTlsMaterial LoadFiles(string certificatePath, string keyPath, TimeProvider timeProvider)
    {
        var (certificate, chain) = PemFiles.ReadWithKey(certificatePath, keyPath);
        var now = timeProvider.GetUtcNow();
        if (certificate.NotAfter <= now)
        {
            throw new TlsMaterialException($"{certificatePath}: certificate {certificate.Subject} expired on {certificate.NotAfter.ToUniversalTime():O}");
        }

        if (certificate.NotBefore > now)
        {
            throw new TlsMaterialException($"{certificatePath}: certificate {certificate.Subject} is not valid before {certificate.NotBefore.ToUniversalTime():O}");
        }

        return new ServerTlsMaterial(certificate, chain, null);
    }

    private static CertificateAuthority LoadOrCreateCa(string certificatePath, string keyPath, string commonName, TimeProvider timeProvider, ILogger logger)
    {
        if (File.Exists(certificatePath) || File.Exists(keyPath))
        {
            var ca = CertificateAuthority.Load(certificatePath, keyPath, timeProvider);
            if (ca.Certificate.NotAfter > timeProvider.GetUtcNow())
            {
                return ca;
            }

            LogCaExpired(logger, certificatePath, ca.Certificate.NotAfter.ToUniversalTime());
            ca.Dispose();
        }

        var created = CertificateAuthority.Create(commonName, CaValidity, timeProvider);
        created.Save(certificatePath, keyPath);
        LogCaCreated(logger, certificatePath);
        return created;
    }

    private static X509Certificate2? TryLoadServer(string certificatePath, string keyPath)
    {
        if (!File.Exists(certificatePath) || !File.Exists(keyPath))
        {
            return null;
        }

        try
        {
            return PemFiles.ReadWithKey(certificatePath, keyPath).Certificate;
        }
        catch (TlsMaterialException)
        {
            // The server certificate is derived material: reissuing it is always safe.
            return null;
        }
    }

    /// <summary>localhost, the loopback addresses, this host's name and <paramref name="extraNames"/> (IP literals become IP SANs).</summary>
    internal static (List<string> DnsNames, List<IPAddress> IpAddresses) WantedNames(IEnumerable<string> extraNames)
    {
        var dns = new List<string> { "localhost" };
        var ips = new List<IPAddress> { IPAddress.Loopback, IPAddress.IPv6Loopback };
        var hostName = Dns.GetHostName();
        foreach (var name in extraNames.Prepend(hostName))
        {
            var trimmed = name.Trim().TrimStart('[').TrimEnd(']');
            if (trimmed.Length == 0)
            {
                continue;
            }

            if (IPAddress.TryParse(trimmed, out var ip))
            {
                if (!ips.Contains(ip))
                {
                    ips.Add(ip);
                }
            }
            else if (Uri.CheckHostName(trimmed) == UriHostNameType.Dns)
            {
                if (!dns.Contains(trimmed, StringComparer.OrdinalIgnoreCase))
                {
                    dns.Add(trimmed.ToLowerInvariant());
                }
            }
            else if (!ReferenceEquals(name, hostName))
            {
                throw new TlsMaterialException($"\"{name}\" is neither a host name nor an IP address");
            }
        }

        return (dns, ips);
    }

    /// <summary>True when the certificate's SANs include every name and address wanted.</summary>
    internal static bool Covers(X509Certificate2 certificate, IReadOnlyCollection<string> dnsNames, IReadOnlyCollection<IPAddress> ipAddresses)
    {
        var extension = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        if (extension is null)
        {
            return false;
        }

        var haveDns = extension.EnumerateDnsNames().ToHashSet(StringComparer.OrdinalIgnoreCase);
        var haveIps = extension.EnumerateIPAddresses().ToHashSet();
        return dnsNames.All(haveDns.Contains) && ipAddresses.All(haveIps.Contains);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created CA {Path}; clients must trust it")]
    private static partial void LogCaCreated(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "CA {Path} expired at {NotAfter}; creating a new one (clients must be given the new ca.crt)")]
    private static partial void LogCaExpired(ILogger logger, string path, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Information, Message = "Issued server certificate {Path} ({Reason}); valid until {NotAfter}")]
    private static partial void LogIssued(ILogger logger, string path, string reason, DateTime notAfter);
}
