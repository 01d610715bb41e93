using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.IO;
using Airlock.Tls;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Cluster.Pki;

/// <summary>What <see cref="ServerPki"/> needs.</summary>
public sealed record ServerPkiOptions
{
    public required ServerDirectory Directory { get; init; }

    /// <summary>Extra names and addresses for the serving certificates (<c>--tls-san</c>).</summary>
    public IReadOnlyList<string> TlsSans { get; init; } = [];

    /// <summary>The server's node name (CN of its peer certificate, and one more SAN).</summary>
    public string NodeName { get; init; } = Dns.GetHostName().ToLowerInvariant();

    /// <summary>K3s's rule: a leaf certificate within this of its expiry is renewed at start (<c>--cert-renew-within</c>).</summary>
    public TimeSpan RenewWithin { get; init; } = ServerPki.DefaultRenewWithin;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public ILogger Logger { get; init; } = NullLogger.Instance;
}

/// <summary>A server certificate with its key, and the intermediates to send along (the cross-signed CA after a rotation).</summary>
public sealed record ServiceCertificate(ClusterService Service, X509Certificate2 Certificate, X509Certificate2Collection Chain);

/// <summary>
/// The server's root of trust under <c>server/tls</c>: a server CA (signs serving certificates) and a client CA (signs client
/// certificates), 10 years, ECDSA P-256; and leaf certificates (365 days) for the supervisor API, the embedded registry, the
/// peer mirror and the operator. Created at the first start and reused; at every start a leaf that is missing, expired,
/// within <see cref="ServerPkiOptions.RenewWithin"/> of expiry, not from the current CA or lacking a wanted name is reissued
/// (after a backup of the folder to <c>server/tls-&lt;unix time&gt;</c>). A CA is never replaced silently (every node trusts
/// it), and a file that cannot be used (truncated, a key that does not match its certificate) stops the start with a message
/// naming the file and the command that reissues it: nothing is overwritten without a backup.
/// </summary>
public sealed partial class ServerPki : IDisposable
{
    public const string ServerCaName = "server-ca";
    public const string ClientCaName = "client-ca";

    public static readonly TimeSpan CaValidity = TimeSpan.FromDays(3650);
    public static readonly TimeSpan LeafValidity = TimeSpan.FromDays(365);
    public static readonly TimeSpan DefaultRenewWithin = TimeSpan.FromDays(120);

    /// <summary>The organisation of the operator's certificate, as Kubernetes's cluster-admin group.</summary>
    public const string AdminOrganization = "system:masters";

    public const string AdminCommonName = "system:admin";

    private readonly Dictionary<ClusterService, ServiceCertificate> _services;

    private ServerPki(ClusterCa serverCa, ClusterCa clientCa, Dictionary<ClusterService, ServiceCertificate> services, string? backup)
    {
        ServerCa = serverCa;
        ClientCa = clientCa;
        _services = services;
        Backup = backup;
    }

    public ClusterCa ServerCa { get; }

    public ClusterCa ClientCa { get; }

    /// <summary>Where the folder was backed up before certificates were renewed at this start; null when nothing was.</summary>
    public string? Backup { get; }

    public ServiceCertificate this[ClusterService service] => _services[service];

    /// <summary>Loads, creates or renews as described on the class. Throws <see cref="TlsMaterialException"/> on unusable files.</summary>
    public static ServerPki Open(ServerPkiOptions options)
    {
        var tls = options.Directory.Tls;
        System.IO.Directory.CreateDirectory(tls, DirectoryOwner.Private);
        var time = options.Time;
        var serverCa = LoadOrCreateCa(options, ServerCaName, "airlock-server-ca");
        ClusterCa? clientCa = null;
        try
        {
            clientCa = LoadOrCreateCa(options, ClientCaName, "airlock-client-ca");
            var (wanted, problems) = Inspect(options, serverCa, clientCa);
            if (problems.Count > 0)
            {
                throw new TlsMaterialException(string.Join(Environment.NewLine, problems));
            }

            string? backup = null;
            var services = new Dictionary<ClusterService, ServiceCertificate>();
            foreach (var (service, (current, reason)) in wanted)
            {
                if (reason is null)
                {
                    services[service] = current!;
                    continue;
                }

                if (current is not null && backup is null)
                {
                    backup = BackupTls(options.Directory, time);
                    LogBackup(options.Logger, tls, backup);
                }

                current?.Certificate.Dispose();
                services[service] = Issue(options, serverCa, clientCa, service);
                LogIssued(options.Logger, service.Name(), reason, services[service].Certificate.NotAfter.ToUniversalTime());
            }

            return new ServerPki(serverCa, clientCa, services, backup);
        }
        catch
        {
            serverCa.Dispose();
            clientCa?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies <c>server/tls</c> to <c>server/tls-&lt;unix time&gt;</c> (modes kept: the keys stay 0600), as K3s's
    /// <c>certificate rotate</c> does; returns the backup's path.
    /// </summary>
    public static string BackupTls(ServerDirectory directory, TimeProvider time)
    {
        var stamp = time.GetUtcNow().ToUnixTimeSeconds();
        var target = directory.TlsBackup(stamp);
        for (var n = 2; System.IO.Directory.Exists(target); n++)
        {
            target = directory.TlsBackup(stamp) + "-" + n.ToString(CultureInfo.InvariantCulture);
        }

        var partial = target + ".partial";
        System.IO.Directory.CreateDirectory(partial, DirectoryOwner.Private);
        foreach (var file in System.IO.Directory.EnumerateFiles(directory.Tls))
        {
            if (!Path.GetFileName(file).StartsWith('.'))
            {
                File.Copy(file, Path.Combine(partial, Path.GetFileName(file)));
            }
        }

        // Whole or not at all: a crash mid-copy leaves only a .partial folder, never a backup missing a key.
        System.IO.Directory.Move(partial, target);
        return target;
    }

    /// <summary>Issues <paramref name="service"/>'s certificate afresh and writes it (the caller has made any backup).</summary>
    internal static ServiceCertificate Issue(ServerPkiOptions options, ClusterCa serverCa, ClusterCa clientCa, ClusterService service)
    {
        var ca = service.IsClient() ? clientCa : serverCa;
        var (dns, ips) = WantedNames(options, service);
        var leaf = service.IsClient()
            ? new LeafCertificateRequest(AdminCommonName, [], [], LeafValidity, CertificateUsage.Client, AdminOrganization)
            : new LeafCertificateRequest(service == ClusterService.Peer ? options.NodeName : $"airlock-{service.Name()}", dns, ips, LeafValidity);
        var certificate = ca.Issue(leaf);
        var stem = Path.Combine(options.Directory.Tls, service.FileStem());
        using (var key = certificate.GetECDsaPrivateKey()!)
        {
            PemFiles.WriteKey(key, stem + ".key");
        }

        PemFiles.WriteCertificates([certificate, .. ca.Chain], stem + ".crt");
        return new ServiceCertificate(service, certificate, ca.Chain);
    }

    /// <summary>
    /// The names a serving certificate must carry: localhost, the loopback addresses, this host's name and every address of
    /// its interfaces (so agents can reach the server by any of them), the node name and <c>--tls-san</c>.
    /// </summary>
    internal static (List<string> DnsNames, List<IPAddress> IpAddresses) WantedNames(ServerPkiOptions options, ClusterService service)
    {
        if (service.IsClient())
        {
            return ([], []);
        }

        var (dns, ips) = ServerCertificates.WantedNames([options.NodeName, .. options.TlsSans]);
        foreach (var address in HostAddresses())
        {
            if (!ips.Contains(address))
            {
                ips.Add(address);
            }
        }

        return (dns, ips);
    }

    /// <summary>The unicast addresses of the host's interfaces that are up, link-local ones left out (they need a scope).</summary>
    public static IReadOnlyList<IPAddress> HostAddresses() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.OperationalStatus is OperationalStatus.Up or OperationalStatus.Unknown)
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .Where(a => !a.IsIPv6LinkLocal && !IPAddress.IsLoopback(a))
            .Distinct()
            .ToList();

    private static ClusterCa LoadOrCreateCa(ServerPkiOptions options, string name, string commonName)
    {
        var tls = options.Directory.Tls;
        var certificatePath = Path.Combine(tls, name + ".crt");
        var keyPath = Path.Combine(tls, name + ".key");
        if (!File.Exists(certificatePath) && !File.Exists(keyPath))
        {
            // Also the recovery of a first start that crashed between the two CAs: nothing can trust a CA never completed.
            var created = ClusterCa.Create($"{commonName}@{options.Time.GetUtcNow().ToUnixTimeSeconds()}", CaValidity, options.Time);
            created.Save(tls, name);
            LogCaCreated(options.Logger, certificatePath);
            return created;
        }

        ClusterCa ca;
        try
        {
            ca = ClusterCa.Load(tls, name, options.Time);
        }
        catch (TlsMaterialException ex)
        {
            throw new TlsMaterialException($"{ex.Message}; the cluster CA is never replaced by itself, since every node trusts it: "
                + $"restore {name}.crt and {name}.key from a backup ({options.Directory.Root}/tls-<unix time>)", ex);
        }

        if (ca.Signer.NotAfter <= options.Time.GetUtcNow())
        {
            var notAfter = ca.Signer.NotAfter.ToUniversalTime();
            ca.Dispose();
            throw new TlsMaterialException($"{certificatePath}: the cluster CA expired at {notAfter:yyyy-MM-ddTHH:mm:ssZ}: "
                + "replace it with `airlock certificate rotate-ca` (every node must then join again with the new token)");
        }

        return ca;
    }

    /// <summary>Each service's current certificate and why it must be reissued (null: it is fine); and files that cannot be used.</summary>
    private static (Dictionary<ClusterService, (ServiceCertificate? Current, string? Reason)> Wanted, List<string> Problems) Inspect(
        ServerPkiOptions options, ClusterCa serverCa, ClusterCa clientCa)
    {
        var wanted = new Dictionary<ClusterService, (ServiceCertificate?, string?)>();
        var problems = new List<string>();
        var now = options.Time.GetUtcNow();
        foreach (var service in ClusterServices.All)
        {
            var stem = Path.Combine(options.Directory.Tls, service.FileStem());
            var certificatePath = stem + ".crt";
            var keyPath = stem + ".key";
            if (!File.Exists(certificatePath) && !File.Exists(keyPath))
            {
                wanted[service] = (null, "missing");
                continue;
            }

            ServiceCertificate current;
            try
            {
                var (certificate, chain) = PemFiles.ReadWithKey(certificatePath, keyPath);
                current = new ServiceCertificate(service, certificate, chain);
            }
            catch (TlsMaterialException ex)
            {
                problems.Add($"{ex.Message}: reissue it with `airlock certificate rotate --service {service.Name()}` "
                    + $"(with the server stopped; {options.Directory.Tls} is backed up first)");
                continue;
            }

            var certificateNow = current.Certificate;
            var ca = service.IsClient() ? clientCa : serverCa;
            var (dns, ips) = WantedNames(options, service);
            var reason = certificateNow.NotAfter <= now ? $"expired at {certificateNow.NotAfter.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ}"
                : certificateNow.NotAfter - now <= options.RenewWithin ? $"expires at {certificateNow.NotAfter.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ}, within {options.RenewWithin.TotalDays:0} days"
                : !IsIssuedBy(certificateNow, ca.Signer) || !ca.Verifies(certificateNow, current.Chain, now) ? "not issued by the current cluster CA"
                : !service.IsClient() && !ServerCertificates.Covers(certificateNow, dns, ips) ? "lacks a wanted host name or address"
                : null;
            wanted[service] = (current, reason);
        }

        return (wanted, problems);
    }

    private static bool IsIssuedBy(X509Certificate2 certificate, X509Certificate2 ca) =>
        certificate.IssuerName.RawData.AsSpan().SequenceEqual(ca.SubjectName.RawData);

    public void Dispose()
    {
        foreach (var service in _services.Values)
        {
            service.Certificate.Dispose();
        }

        ServerCa.Dispose();
        ClientCa.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created cluster CA {Path}; nodes trust it through the join token's hash")]
    private static partial void LogCaCreated(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backed up {Directory} to {Backup} before renewing certificates")]
    private static partial void LogBackup(ILogger logger, string directory, string backup);

    [LoggerMessage(Level = LogLevel.Information, Message = "Issued the {Service} certificate ({Reason}); valid until {NotAfter}")]
    private static partial void LogIssued(ILogger logger, string service, string reason, DateTime notAfter);
}
