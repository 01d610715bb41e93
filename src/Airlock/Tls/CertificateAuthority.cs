using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Airlock.Tls;

/// <summary>What a leaf certificate is for: TLS server, TLS client, or both.</summary>
[Flags]
public enum CertificateUsage
{
    Server = 1,
    Client = 2,
}

/// <summary>A leaf certificate to issue.</summary>
/// <param name="CommonName">Subject CN (for servers the SANs are what clients check).</param>
/// <param name="DnsNames">subjectAltName DNS entries.</param>
/// <param name="IpAddresses">subjectAltName IP entries.</param>
/// <param name="Validity">Lifetime from now (capped at the CA's own expiry).</param>
/// <param name="Usage">Extended key usage.</param>
/// <param name="Organization">Subject O, e.g. a group (<c>system:nodes</c>) a client certificate stands for.</param>
public sealed record LeafCertificateRequest(
    string CommonName,
    IReadOnlyList<string> DnsNames,
    IReadOnlyList<IPAddress> IpAddresses,
    TimeSpan Validity,
    CertificateUsage Usage = CertificateUsage.Server,
    string? Organization = null)
{
    /// <summary>The subject: <c>CN</c>, and <c>O</c> when given.</summary>
    public X500DistinguishedName Subject()
    {
        var subject = new X500DistinguishedNameBuilder();
        if (Organization is not null)
        {
            subject.AddOrganizationName(Organization);
        }

        subject.AddCommonName(CommonName);
        return subject.Build();
    }
}

/// <summary>
/// A certificate authority: an ECDSA P-256 self-signed CA certificate with its key, which issues leaf
/// certificates. Generic on purpose: the registry uses it for its self-signed TLS (<see cref="ServerCertificates"/>),
/// the cluster for node and client certificates.
/// </summary>
public sealed class CertificateAuthority : IDisposable
{
    /// <summary>Certificates start an hour in the past so nodes whose clocks lag a little accept them.</summary>
    private static readonly TimeSpan Backdate = TimeSpan.FromHours(1);

    private readonly TimeProvider _timeProvider;

    private CertificateAuthority(X509Certificate2 certificate, TimeProvider timeProvider)
    {
        Certificate = certificate;
        _timeProvider = timeProvider;
    }

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>Creates a new CA valid from now for <paramref name="validity"/>.</summary>
    public static CertificateAuthority Create(string commonName, TimeSpan validity, TimeProvider timeProvider)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = CaRequest(new X500DistinguishedName($"CN={commonName}"), key.ExportSubjectPublicKeyInfo(), key);
        var now = timeProvider.GetUtcNow();
        return new CertificateAuthority(request.CreateSelfSigned(now - Backdate, now + validity), timeProvider);
    }

    /// <summary>Wraps a CA certificate that carries its private key (e.g. one an operator supplied and the caller checked).</summary>
    public static CertificateAuthority FromCertificate(X509Certificate2 certificate, TimeProvider timeProvider) =>
        certificate.HasPrivateKey && certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is { CertificateAuthority: true }
            ? new CertificateAuthority(certificate, timeProvider)
            : throw new TlsMaterialException($"{certificate.Subject} is not a CA certificate with its private key");

    /// <summary>
    /// A certificate for <paramref name="other"/>'s subject and key, issued by this CA (cross-signing): whoever trusts this
    /// CA then also accepts certificates <paramref name="other"/> issues, when it is sent along in the chain. This is how a
    /// replaced CA's successor stays trusted by nodes that have not learned it yet.
    /// </summary>
    public X509Certificate2 CrossSign(X509Certificate2 other)
    {
        var request = CaRequest(other.SubjectName, other.PublicKey.ExportSubjectPublicKeyInfo(), signingKey: null);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var notAfter = other.NotAfter < Certificate.NotAfter ? other.NotAfter : Certificate.NotAfter;
        return request.Create(Certificate, _timeProvider.GetUtcNow() - Backdate, notAfter, NewSerial());
    }

    private static CertificateRequest CaRequest(X500DistinguishedName subject, byte[] subjectPublicKeyInfo, ECDsa? signingKey)
    {
        var request = signingKey is not null
            ? new CertificateRequest(subject, signingKey, HashAlgorithmName.SHA256)
            : new CertificateRequest(subject, PublicKey.CreateFromSubjectPublicKeyInfo(subjectPublicKeyInfo, out _), HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request;
    }

    /// <summary>Loads a CA from PEM files; throws <see cref="TlsMaterialException"/> when they are missing,
    /// malformed, do not match, or the certificate is not a CA.</summary>
    public static CertificateAuthority Load(string certificatePath, string keyPath, TimeProvider timeProvider)
    {
        var (certificate, _) = PemFiles.ReadWithKey(certificatePath, keyPath);
        var constraints = certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
        if (constraints is not { CertificateAuthority: true })
        {
            throw new TlsMaterialException($"{certificatePath}: {certificate.Subject} is not a CA certificate (no basicConstraints CA:TRUE)");
        }

        return new CertificateAuthority(certificate, timeProvider);
    }

    /// <summary>Writes the CA certificate and (mode 0600) key as PEM.</summary>
    public void Save(string certificatePath, string keyPath) => PemFiles.Write(Certificate, certificatePath, keyPath);

    /// <summary>Issues a leaf certificate with a fresh ECDSA P-256 key; the result carries the key.</summary>
    public X509Certificate2 Issue(LeafCertificateRequest leaf)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var issued = Issue(leaf, new PublicKey(key));
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>
    /// Issues a leaf certificate for a key held elsewhere (the public key of a certificate signing request): the private key
    /// never leaves the machine that made it. Subject and extensions are this method's own, never copied from a request.
    /// </summary>
    public X509Certificate2 Issue(LeafCertificateRequest leaf, PublicKey publicKey)
    {
        var request = new CertificateRequest(leaf.Subject(), publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        var usages = new OidCollection();
        if (leaf.Usage.HasFlag(CertificateUsage.Server))
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.1", "TLS Web Server Authentication"));
        }

        if (leaf.Usage.HasFlag(CertificateUsage.Client))
        {
            usages.Add(new Oid("1.3.6.1.5.5.7.3.2", "TLS Web Client Authentication"));
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, critical: false));
        if (leaf.DnsNames.Count + leaf.IpAddresses.Count > 0)
        {
            var names = new SubjectAlternativeNameBuilder();
            foreach (var dns in leaf.DnsNames)
            {
                names.AddDnsName(dns);
            }

            foreach (var ip in leaf.IpAddresses)
            {
                names.AddIpAddress(ip);
            }

            request.CertificateExtensions.Add(names.Build());
        }

        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));

        var now = _timeProvider.GetUtcNow();
        var notAfter = now + leaf.Validity;
        if (notAfter > Certificate.NotAfter)
        {
            notAfter = Certificate.NotAfter;
        }

        return request.Create(Certificate, now - Backdate, notAfter, NewSerial());
    }

    private static byte[] NewSerial()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        return serial;
    }

    /// <summary>True when <paramref name="certificate"/> chains to this CA and is valid now.</summary>
    public bool Verifies(X509Certificate2 certificate) => CertificateTrust.ChainsTo(certificate, [Certificate], _timeProvider.GetUtcNow());

    public void Dispose() => Certificate.Dispose();
}
