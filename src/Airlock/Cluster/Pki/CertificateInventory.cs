using System.Security.Cryptography.X509Certificates;
using Airlock.Tls;

namespace Airlock.Cluster.Pki;

/// <summary>One certificate as <c>airlock certificate check</c> shows it.</summary>
/// <param name="File">The file it is in.</param>
/// <param name="Position">0 for the file's first certificate; bundles and chains list the others after it.</param>
/// <param name="Usages"><c>ca</c>, <c>server</c>, <c>client</c>.</param>
/// <param name="Status"><c>OK</c>, <c>WARNING</c> (within the renewal window), <c>EXPIRED</c>, <c>NOT YET VALID</c>, or <c>UNREADABLE</c>.</param>
public sealed record CertificateStatus(
    string File,
    int Position,
    string Subject,
    string Issuer,
    IReadOnlyList<string> Usages,
    IReadOnlyList<string> Sans,
    DateTimeOffset? NotBefore,
    DateTimeOffset? NotAfter,
    int? DaysLeft,
    string Status);

/// <summary>
/// Every certificate file of this machine's cluster state (<c>server/tls</c> and the agent's) with its subject, issuer, names,
/// expiry and status — K3s's <c>certificate check</c>. The console's certificate page reads the same list.
/// </summary>
public static class CertificateInventory
{
    public const string Ok = "OK";
    public const string Warning = "WARNING";
    public const string Expired = "EXPIRED";
    public const string NotYetValid = "NOT YET VALID";
    public const string Unreadable = "UNREADABLE";

    /// <summary>The certificates under <paramref name="dataDirectory"/>'s <c>server/tls</c> and <c>agent</c> folders, by file.</summary>
    public static IReadOnlyList<CertificateStatus> Check(string dataDirectory, TimeSpan renewWithin, TimeProvider time)
    {
        var folders = new[] { new ServerDirectory(dataDirectory).Tls, new AgentDirectory(dataDirectory).Root };
        var now = time.GetUtcNow();
        var result = new List<CertificateStatus>();
        foreach (var folder in folders.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(folder, "*.crt").Order(StringComparer.Ordinal))
            {
                result.AddRange(CheckFile(file, renewWithin, now));
            }
        }

        return result;
    }

    /// <summary>Every certificate in one PEM file.</summary>
    public static IReadOnlyList<CertificateStatus> CheckFile(string file, TimeSpan renewWithin, DateTimeOffset now)
    {
        X509Certificate2Collection certificates;
        try
        {
            certificates = PemFiles.ReadCertificates(file);
        }
        catch (TlsMaterialException)
        {
            return [new CertificateStatus(file, 0, "", "", [], [], null, null, null, Unreadable)];
        }

        return certificates.Select((certificate, position) =>
        {
            var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime());
            var notBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime());
            var status = now < notBefore ? NotYetValid
                : now >= notAfter ? Expired
                : notAfter - now <= renewWithin ? Warning
                : Ok;
            var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
            var sans = names is null
                ? []
                : names.EnumerateDnsNames().Concat(names.EnumerateIPAddresses().Select(ip => ip.ToString())).ToList();
            return new CertificateStatus(file, position, certificate.Subject, certificate.Issuer, Usages(certificate), sans,
                notBefore, notAfter, (int)Math.Floor((notAfter - now).TotalDays), status);
        }).ToList();
    }

    private static List<string> Usages(X509Certificate2 certificate)
    {
        var usages = new List<string>();
        if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is { CertificateAuthority: true })
        {
            usages.Add("ca");
        }

        if (certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } enhanced)
        {
            foreach (var oid in enhanced.EnhancedKeyUsages)
            {
                usages.Add(oid.Value switch
                {
                    "1.3.6.1.5.5.7.3.1" => "server",
                    "1.3.6.1.5.5.7.3.2" => "client",
                    _ => oid.Value ?? "?",
                });
            }
        }

        return usages;
    }
}
