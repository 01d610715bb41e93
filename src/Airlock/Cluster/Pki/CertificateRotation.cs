using System.Security.Cryptography.X509Certificates;
using Airlock.Cluster.Tokens;
using Airlock.IO;
using Airlock.Tls;

namespace Airlock.Cluster.Pki;

/// <summary>What a rotation did: where the old files went, which certificates were reissued, and the token now.</summary>
public sealed record RotationResult(string Backup, IReadOnlyList<ClusterService> Reissued, JoinToken? Token);

/// <summary>
/// K3s's <c>certificate rotate</c> and <c>rotate-ca</c>, done with the server stopped (the seed's manual procedure): the lock
/// the running server holds is taken first, so a rotation under a running server is refused rather than half-seen by it;
/// then <c>server/tls</c> is backed up to <c>server/tls-&lt;unix time&gt;</c>, and only then is anything written.
/// </summary>
public static class CertificateRotation
{
    /// <summary>Reissues <paramref name="services"/> (all when empty) from the current CAs.</summary>
    public static RotationResult Rotate(ServerPkiOptions options, IReadOnlyList<ClusterService> services)
    {
        using var held = Prepare(options, "certificates cannot be rotated now", rewritesToken: false);
        var backup = ServerPki.BackupTls(options.Directory, options.Time);
        using var serverCa = ClusterCa.Load(options.Directory.Tls, ServerPki.ServerCaName, options.Time);
        using var clientCa = ClusterCa.Load(options.Directory.Tls, ServerPki.ClientCaName, options.Time);
        var reissued = services.Count == 0 ? ClusterServices.All : services;
        foreach (var service in reissued)
        {
            ServerPki.Issue(options, serverCa, clientCa, service).Certificate.Dispose();
        }

        return new RotationResult(backup, reissued, null);
    }

    /// <summary>
    /// Replaces both CAs: with new ones, or with the operator's from <paramref name="path"/> (<c>server-ca.crt</c>/<c>.key</c>
    /// and <c>client-ca.crt</c>/<c>.key</c>). Each new CA is cross-signed by the one it replaces, which stays in the bundle,
    /// so nodes joined under the old CA keep trusting the server (and the server them) until they renew; every server
    /// certificate is reissued under the new CA, and the token files get the new bundle's hash.
    /// </summary>
    public static RotationResult RotateCa(ServerPkiOptions options, string? path)
    {
        using var held = Prepare(options, "the CA cannot be rotated now", rewritesToken: true);
        var time = options.Time;
        X509Certificate2? newServer = null;
        X509Certificate2? newClient = null;
        if (path is not null)
        {
            (newServer, newClient) = LoadOperatorCas(path, time);
        }

        using var oldServer = ClusterCa.Load(options.Directory.Tls, ServerPki.ServerCaName, time);
        using var oldClient = ClusterCa.Load(options.Directory.Tls, ServerPki.ClientCaName, time);
        // K3s names CAs NAME@<unix time>; the random part keeps two rotations within one second apart.
        var stamp = $"{time.GetUtcNow().ToUnixTimeSeconds()}-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(2))}";
        newServer ??= CertificateAuthority.Create($"airlock-server-ca@{stamp}", ServerPki.CaValidity, time).Certificate;
        newClient ??= CertificateAuthority.Create($"airlock-client-ca@{stamp}", ServerPki.CaValidity, time).Certificate;
        if (newServer.SubjectName.RawData.AsSpan().SequenceEqual(oldServer.Signer.SubjectName.RawData)
            || newClient.SubjectName.RawData.AsSpan().SequenceEqual(oldClient.Signer.SubjectName.RawData))
        {
            throw new TlsMaterialException("a new CA has the same subject as the CA it replaces; give it another name, so nodes can tell the two apart while both are trusted");
        }

        var backup = ServerPki.BackupTls(options.Directory, time);
        using var serverCa = oldServer.Succeed(newServer, time);
        using var clientCa = oldClient.Succeed(newClient, time);
        serverCa.Save(options.Directory.Tls, ServerPki.ServerCaName);
        clientCa.Save(options.Directory.Tls, ServerPki.ClientCaName);
        foreach (var service in ClusterServices.All)
        {
            ServerPki.Issue(options, serverCa, clientCa, service).Certificate.Dispose();
        }

        var token = ClusterTokens.Rehash(options.Directory, serverCa.Hash);
        return new RotationResult(backup, ClusterServices.All, token);
    }

    private static ServerLock Prepare(ServerPkiOptions options, string refusal, bool rewritesToken)
    {
        var directory = options.Directory;
        if (!File.Exists(Path.Combine(directory.Tls, ServerPki.ServerCaName + ".crt")))
        {
            throw new FileNotFoundException($"{directory.Tls} holds no cluster CA: start `airlock server --data-dir {directory.DataDirectory}` once to create it");
        }

        if (rewritesToken && !File.Exists(directory.Token))
        {
            throw new FileNotFoundException($"{directory.Token} does not exist: start `airlock server --data-dir {directory.DataDirectory}` once to create the cluster");
        }

        DirectoryOwner.EnsureOwned(directory.Root);
        return ServerLock.Acquire(directory, refusal);
    }

    private static (X509Certificate2 Server, X509Certificate2 Client) LoadOperatorCas(string path, TimeProvider time)
    {
        if (!Directory.Exists(path))
        {
            throw new DirectoryNotFoundException($"--path {path} does not exist: give the folder holding server-ca.crt, server-ca.key, client-ca.crt and client-ca.key");
        }

        var now = time.GetUtcNow();
        var problems = new List<string>();
        var loaded = new List<X509Certificate2>();
        foreach (var name in new[] { ServerPki.ServerCaName, ServerPki.ClientCaName })
        {
            try
            {
                var (certificate, _) = PemFiles.ReadWithKey(Path.Combine(path, name + ".crt"), Path.Combine(path, name + ".key"));
                if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
                {
                    problems.Add($"{Path.Combine(path, name + ".crt")}: {certificate.Subject} is not a CA certificate (no basicConstraints CA:TRUE)");
                }
                else if (certificate.NotAfter <= now || certificate.NotBefore > now)
                {
                    problems.Add($"{Path.Combine(path, name + ".crt")}: {certificate.Subject} is not valid now ({certificate.NotBefore:u} – {certificate.NotAfter:u})");
                }
                else if (certificate.GetECDsaPrivateKey() is null)
                {
                    problems.Add($"{Path.Combine(path, name + ".crt")}: the cluster's CAs are ECDSA; {certificate.Subject} has another key type");
                }

                loaded.Add(certificate);
            }
            catch (TlsMaterialException ex)
            {
                problems.Add(ex.Message);
            }
        }

        if (problems.Count > 0)
        {
            throw new TlsMaterialException(string.Join(Environment.NewLine, problems));
        }

        return (loaded[0], loaded[1]);
    }
}
