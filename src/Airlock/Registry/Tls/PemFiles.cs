using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.IO;

namespace Airlock.Registry.Tls;

/// <summary>Reading and writing PEM certificates and keys, the format openssl, K3s and containerd use.</summary>
public static class PemFiles
{
    /// <summary>
    /// Writes <paramref name="certificate"/> (and its private key if it has one and
    /// <paramref name="keyPath"/> is given) as PEM. Keys are created with mode 0600; both files are
    /// written to a temporary name, fsynced and renamed, so a crash never leaves half a key.
    /// </summary>
    public static void Write(X509Certificate2 certificate, string certificatePath, string? keyPath = null)
    {
        WriteAtomically(certificatePath, certificate.ExportCertificatePem() + "\n", secret: false);
        if (keyPath is not null)
        {
            WriteAtomically(keyPath, ExportPrivateKeyPem(certificate) + "\n", secret: true);
        }
    }

    /// <summary>
    /// Loads a certificate (the first in <paramref name="certificatePath"/>; any following ones are the
    /// chain) with its private key from <paramref name="keyPath"/> (PKCS#8, SEC1 EC or PKCS#1 RSA PEM).
    /// Throws <see cref="TlsMaterialException"/> naming the file when either is missing, unreadable,
    /// malformed, or when the key does not belong to the certificate.
    /// </summary>
    public static (X509Certificate2 Certificate, X509Certificate2Collection Chain) ReadWithKey(string certificatePath, string keyPath)
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(ReadText(certificatePath, "certificate"));
        }
        catch (CryptographicException e)
        {
            throw new TlsMaterialException($"{certificatePath}: not a PEM certificate: {e.Message}", e);
        }

        if (certificates.Count == 0)
        {
            throw new TlsMaterialException($"{certificatePath}: contains no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }

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

    private static string ExportPrivateKeyPem(X509Certificate2 certificate)
    {
        using var key = (AsymmetricAlgorithm?)certificate.GetECDsaPrivateKey() ?? certificate.GetRSAPrivateKey()
            ?? throw new InvalidOperationException($"certificate {certificate.Subject} has no ECDSA or RSA private key");
        return key.ExportPkcs8PrivateKeyPem();
    }

    private static string ReadText(string path, string what)
    {
        try
        {
            return File.ReadAllText(path, Encoding.ASCII);
        }
        catch (FileNotFoundException e)
        {
            throw new TlsMaterialException($"{path}: {what} file does not exist", e);
        }
        catch (DirectoryNotFoundException e)
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

    internal static void WriteAtomically(string path, string content, bool secret) =>
        AtomicFile.Write(path, Encoding.ASCII.GetBytes(content), secret ? AtomicFile.Private : AtomicFile.Readable);
}
