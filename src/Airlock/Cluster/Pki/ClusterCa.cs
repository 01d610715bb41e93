using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.Cluster.Tokens;
using Airlock.IO;
using Airlock.Tls;

namespace Airlock.Cluster.Pki;

/// <summary>
/// One of the cluster's two CAs (servers, clients) as it is kept on disk: <c>NAME.crt</c> is the bundle of the CA that signs
/// now followed by the one it replaced (still trusted until every node has renewed), <c>NAME.key</c> the signing key, and
/// <c>NAME-cross.crt</c> the signing CA cross-signed by the replaced one, sent along with every certificate it issues so
/// that nodes which only know the replaced CA keep accepting them.
/// </summary>
public sealed class ClusterCa : IDisposable
{
    private readonly CertificateAuthority _authority;

    private ClusterCa(CertificateAuthority authority, X509Certificate2Collection previous, X509Certificate2? crossSigned, byte[] bundlePem)
    {
        _authority = authority;
        Previous = previous;
        CrossSigned = crossSigned;
        BundlePem = bundlePem;
        Trusted = [authority.Certificate, .. previous];
    }

    /// <summary>The CA that signs, with its private key.</summary>
    public X509Certificate2 Signer => _authority.Certificate;

    /// <summary>The replaced CA(s), trusted but no longer signing.</summary>
    public X509Certificate2Collection Previous { get; }

    /// <summary>The signer issued by the replaced CA; null until the first CA rotation.</summary>
    public X509Certificate2? CrossSigned { get; }

    /// <summary><see cref="Signer"/> and <see cref="Previous"/>: what a peer should trust.</summary>
    public X509Certificate2Collection Trusted { get; }

    /// <summary>
    /// The exact bytes of <c>NAME.crt</c> (for the server CA, what <c>/cacerts</c> serves and the token's hash covers); empty
    /// for a CA made by <see cref="Create"/> or <see cref="Succeed"/> until it is saved.
    /// </summary>
    public byte[] BundlePem { get; private set; }

    /// <summary>Lower-case hex SHA-256 of <see cref="BundlePem"/>.</summary>
    public string Hash => JoinToken.HashCaBundle(BundlePem);

    /// <summary>What goes after a leaf this CA issued in its file and in a TLS handshake.</summary>
    public X509Certificate2Collection Chain => CrossSigned is null ? [] : [CrossSigned];

    internal CertificateAuthority Authority => _authority;

    /// <summary>A new CA (ECDSA P-256) named <paramref name="commonName"/>, valid for <paramref name="validity"/>.</summary>
    public static ClusterCa Create(string commonName, TimeSpan validity, TimeProvider timeProvider)
    {
        var authority = CertificateAuthority.Create(commonName, validity, timeProvider);
        return new ClusterCa(authority, [], null, []);
    }

    /// <summary>
    /// <paramref name="successor"/> (with its key) taking over from this CA: the successor signs, this CA stays trusted and
    /// cross-signs the successor. Older CAs than this one are dropped from the bundle.
    /// </summary>
    public ClusterCa Succeed(X509Certificate2 successor, TimeProvider timeProvider)
    {
        var authority = CertificateAuthority.FromCertificate(successor, timeProvider);
        var crossSigned = _authority.CrossSign(successor);
        var previous = new X509Certificate2Collection(X509CertificateLoader.LoadCertificate(Signer.RawData));
        return new ClusterCa(authority, previous, crossSigned, []);
    }

    /// <summary>Loads <c>NAME.crt</c>, <c>NAME.key</c> and (when present) <c>NAME-cross.crt</c> from <paramref name="directory"/>.</summary>
    public static ClusterCa Load(string directory, string name, TimeProvider timeProvider)
    {
        var certificatePath = Path.Combine(directory, name + ".crt");
        var (signer, following) = PemFiles.ReadWithKey(certificatePath, Path.Combine(directory, name + ".key"));
        CertificateAuthority authority;
        try
        {
            authority = CertificateAuthority.FromCertificate(signer, timeProvider);
        }
        catch (TlsMaterialException)
        {
            throw new TlsMaterialException($"{certificatePath}: {signer.Subject} is not a CA certificate (no basicConstraints CA:TRUE)");
        }

        var crossPath = Path.Combine(directory, name + "-cross.crt");
        var crossSigned = File.Exists(crossPath) ? PemFiles.ReadCertificates(crossPath, "cross-signed CA")[0] : null;

        return new ClusterCa(authority, following, crossSigned, File.ReadAllBytes(certificatePath));
    }

    /// <summary>
    /// Writes the key (0600), the bundle (0644) and the cross-signed certificate when there is one; from then on
    /// <see cref="BundlePem"/> is the file's bytes, which is what <c>/cacerts</c> serves.
    /// </summary>
    public void Save(string directory, string name)
    {
        using (var key = Signer.GetECDsaPrivateKey()!)
        {
            PemFiles.WriteKey(key, Path.Combine(directory, name + ".key"));
        }

        var bundlePath = Path.Combine(directory, name + ".crt");
        PemFiles.WriteCertificates(Trusted, bundlePath);
        var crossPath = Path.Combine(directory, name + "-cross.crt");
        if (CrossSigned is not null)
        {
            PemFiles.WriteCertificates([CrossSigned], crossPath);
        }
        else
        {
            File.Delete(crossPath);
        }

        BundlePem = File.ReadAllBytes(bundlePath);
    }

    /// <summary>Issues a leaf for a key held elsewhere (a CSR's); the result has no private key.</summary>
    public X509Certificate2 Issue(LeafCertificateRequest leaf, System.Security.Cryptography.X509Certificates.PublicKey publicKey) => _authority.Issue(leaf, publicKey);

    /// <summary>Issues a leaf with a fresh key (the server's own services); the result carries the key.</summary>
    public X509Certificate2 Issue(LeafCertificateRequest leaf) => _authority.Issue(leaf);

    /// <summary>
    /// True when <paramref name="certificate"/> (with <paramref name="chain"/> sent along) chains to a trusted CA of this bundle
    /// and is valid at <paramref name="at"/>.
    /// </summary>
    public bool Verifies(X509Certificate2 certificate, X509Certificate2Collection? chain, DateTimeOffset at) =>
        CaTrust.Verifies(Trusted, certificate, chain, at);

    public void Dispose()
    {
        _authority.Dispose();
        CrossSigned?.Dispose();
        foreach (var certificate in Previous)
        {
            certificate.Dispose();
        }
    }
}
