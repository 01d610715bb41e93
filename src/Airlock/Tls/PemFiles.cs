using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.IO;

namespace Airlock.Tls;

/// <summary>
/// Reading and writing PEM certificates and keys, the format openssl, K3s and containerd use. Every read
/// failure is a <see cref="TlsMaterialException"/> whose message names the file and what is wrong with it.
/// </summary>
public static class PemFiles
{
    /// <summary>
    /// Writes <paramref name="certificate"/> (and its private key if it has one and
    /// <paramref name="keyPath"/> is given) as PEM, each through <see cref="AtomicFile"/>: the certificate
    /// 0644, the key 0600 from its first byte, and a crash never leaves half a key.
    /// </summary>
    public static void Write(X509Certificate2 certificate, string certificatePath, string? keyPath = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        WriteText(certificatePath, certificate.ExportCertificatePem(), AtomicFile.Readable);
        if (keyPath is not null)
        {
            using var key = (AsymmetricAlgorithm?)certificate.GetECDsaPrivateKey() ?? certificate.GetRSAPrivateKey()
                ?? throw new InvalidOperationException($"certificate {certificate.Subject} has no ECDSA or RSA private key");
            WriteKey(key, keyPath);
        }
    }

    /// <summary>Writes <paramref name="certificates"/> one after the other into one PEM file (a CA bundle or a chain).</summary>
    public static void WriteCertificates(IEnumerable<X509Certificate2> certificates, string path)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        WriteText(path, string.Join("\n", certificates.Select(c => c.ExportCertificatePem())), AtomicFile.Readable);
    }

    /// <summary>Writes a private key as PKCS#8 PEM, mode 0600 from its first byte.</summary>
    public static void WriteKey(AsymmetricAlgorithm key, string path)
    {
        ArgumentNullException.ThrowIfNull(key);
        WriteText(path, key.ExportPkcs8PrivateKeyPem(), AtomicFile.Private);
    }

    /// <summary>
    /// Every certificate in <paramref name="path"/> (a CA bundle, or a leaf followed by its chain), in file
    /// order; <paramref name="what"/> names the file's role in messages (<c>"CA"</c>, <c>"certificate"</c>).
    /// Throws when the file is missing, unreadable, malformed or holds no certificate.
    /// </summary>
    public static X509Certificate2Collection ReadCertificates(string path, string what = "certificate")
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(ReadText(path, what));
        }
        catch (CryptographicException e)
        {
            throw new TlsMaterialException($"{path}: not a PEM {what} file: {e.Message}", e);
        }

        if (certificates.Count == 0)
        {
            throw new TlsMaterialException($"{path}: contains no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }

        return certificates;
    }

    /// <summary>
    /// Loads a certificate (the first in <paramref name="certificatePath"/>; any following ones are the
    /// chain) with its private key from <paramref name="keyPath"/> (PKCS#8, SEC1 EC or PKCS#1 RSA PEM).
    /// Throws when either file is missing, unreadable, malformed, or when the key does not belong to the
    /// certificate.
    /// </summary>
    public static (X509Certificate2 Certificate, X509Certificate2Collection Chain) ReadWithKey(string certificatePath, string keyPath)
    {
        var certificates = ReadCertificates(certificatePath);
        var leaf = certificates[0];
        var keyPem = ReadText(keyPath, "private key");
        X509Certificate2 withKey;
        try
        {
            withKey = leaf.GetKeyAlgorithm() switch
            {
                "1.2.840.10045.2.1" => CopyWithKey(leaf, keyPem, keyPath, ECDsa.Create, (c, k) => c.CopyWithPrivateKey(k)),
                "1.2.840.113549.1.1.1" => CopyWithKey(leaf, keyPem, keyPath, RSA.Create, (c, k) => c.CopyWithPrivateKey(k)),
                var other => throw new TlsMaterialException($"{certificatePath}: unsupported public key algorithm {other} (use ECDSA or RSA)"),
            };
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new TlsMaterialException($"{keyPath}: not a usable private key for {certificatePath}: {e.Message}", e);
        }

        var chain = new X509Certificate2Collection();
        for (var i = 1; i < certificates.Count; i++)
        {
            chain.Add(certificates[i]);
        }

        return (withKey, chain);
    }

    /// <summary>An ECDSA private key from a PEM file (PKCS#8 or SEC1); the caller owns it.</summary>
    public static ECDsa ReadEcdsaKey(string path)
    {
        var pem = ReadText(path, "private key");
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            return key;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            key.Dispose();
            throw new TlsMaterialException($"{path}: not an ECDSA private key in PEM: {e.Message}", e);
        }
    }

    private static X509Certificate2 CopyWithKey<TKey>(X509Certificate2 certificate, string keyPem, string keyPath, Func<TKey> create, Func<X509Certificate2, TKey, X509Certificate2> copy)
        where TKey : AsymmetricAlgorithm
    {
        using var key = create();
        key.ImportFromPem(keyPem);
        if (!key.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(certificate.PublicKey.ExportSubjectPublicKeyInfo()))
        {
            throw new TlsMaterialException($"{keyPath}: private key does not match the certificate's public key (subject {certificate.Subject})");
        }

        return copy(certificate, key);
    }

    private static void WriteText(string path, string pem, UnixFileMode mode) =>
        AtomicFile.Write(path, Encoding.ASCII.GetBytes(pem + "\n"), mode);

    private static string ReadText(string path, string what)
    {
        try
        {
            return File.ReadAllText(path, Encoding.ASCII);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new TlsMaterialException($"{path}: {what} file does not exist", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new TlsMaterialException($"{path}: {what} file is not readable: {e.Message}", e);
        }
        catch (IOException e)
        {
            throw new TlsMaterialException($"{path}: {what} file cannot be read: {e.Message}", e);
        }
    }
}
