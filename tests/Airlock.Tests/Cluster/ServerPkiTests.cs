using System.Security.Cryptography.X509Certificates;
using Airlock.Cluster;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Tokens;
using Airlock.Tests.Node.ImagesDirectory;
using Airlock.Tls;

namespace Airlock.Tests.Cluster;

/// <summary>The server's certificates at start, in rotation, and with files that cannot be used.</summary>
public sealed class ServerPkiTests : IDisposable
{
    private readonly TempRoot _root = TempRoot.Create("airlock-pki-");
    private readonly ManualTimeProvider _time = new();

    private ServerDirectory Directory => new(_root.Path);

    private string Tls => Directory.Tls;

    public void Dispose() => _root.UnmountAndDelete();

    [Fact]
    public async Task First_start_creates_two_CAs_and_the_server_certificates_and_a_second_start_reuses_them()
    {
        using (var pki = Open())
        {
            Assert.Equal(3650, (pki.ServerCa.Signer.NotAfter - pki.ServerCa.Signer.NotBefore).TotalDays, 0.1);
            Assert.NotEqual(pki.ServerCa.Signer.Subject, pki.ClientCa.Signer.Subject);
            Assert.Equal(256, pki.ServerCa.Signer.GetECDsaPublicKey()!.KeySize);
            Assert.Equal(256, pki.ClientCa.Signer.GetECDsaPublicKey()!.KeySize);
            var supervisor = pki[ClusterService.Supervisor].Certificate;
            Assert.Equal(365, (supervisor.NotAfter.ToUniversalTime() - _time.GetUtcNow().UtcDateTime).TotalDays, 0.1);
            var sans = supervisor.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
            Assert.Contains("server.airgap.test", sans.EnumerateDnsNames());
            Assert.Contains(System.Net.IPAddress.Parse("203.0.113.9"), sans.EnumerateIPAddresses());

            // The host's own names and addresses too, so an agent reaches the server by any of them without a --tls-san.
            Assert.Contains(System.Net.Dns.GetHostName(), sans.EnumerateDnsNames(), StringComparer.OrdinalIgnoreCase);
            Assert.Contains("localhost", sans.EnumerateDnsNames());
            Assert.Contains(System.Net.IPAddress.Loopback, sans.EnumerateIPAddresses());
            Assert.All(ServerPki.HostAddresses(), address => Assert.Contains(address, sans.EnumerateIPAddresses()));
            Assert.Null(pki.Backup);
        }

        foreach (var key in System.IO.Directory.EnumerateFiles(Tls, "*.key"))
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
        }

        var now = _time.GetUtcNow();
        foreach (var service in new[] { "supervisor", "registry", "peer" })
        {
            await Openssl.VerifyAsync(Path.Combine(Tls, "server-ca.crt"), Path.Combine(Tls, service + ".crt"), "sslserver", now);
        }

        await Openssl.VerifyAsync(Path.Combine(Tls, "client-ca.crt"), Path.Combine(Tls, "client-admin.crt"), "sslclient", now);

        var before = TestCluster.Snapshot(Tls);
        using (Open())
        {
        }

        TestCluster.AssertUnchanged(before, Tls);
    }

    [Theory]
    [InlineData(250)] // 115 days left: within K3s's 120
    [InlineData(400)] // expired
    public void Certificates_near_expiry_or_expired_are_renewed_at_start_after_a_backup(int daysLater)
    {
        byte[] oldSupervisor;
        string oldCa;
        using (var pki = Open())
        {
            oldSupervisor = pki[ClusterService.Supervisor].Certificate.RawData;
            oldCa = pki.ServerCa.Signer.Thumbprint;
        }

        _time.Advance(TimeSpan.FromDays(daysLater));
        using var renewed = Open();

        var supervisor = renewed[ClusterService.Supervisor].Certificate;
        Assert.NotEqual(oldSupervisor, supervisor.RawData);
        Assert.True(supervisor.NotAfter.ToUniversalTime() > _time.GetUtcNow().UtcDateTime.AddDays(364));
        Assert.Equal(oldCa, renewed.ServerCa.Signer.Thumbprint);
        Assert.NotNull(renewed.Backup);
        Assert.Equal(oldSupervisor, LoadPem(Path.Combine(renewed.Backup!, "supervisor.crt")).RawData);
        Assert.True(File.Exists(Path.Combine(renewed.Backup!, "server-ca.key")));
    }

    [Fact]
    public void Certificates_far_from_expiry_are_kept()
    {
        using (Open())
        {
        }

        var before = TestCluster.Snapshot(Tls);
        _time.Advance(TimeSpan.FromDays(240)); // 125 days left
        using (var pki = Open())
        {
            Assert.Null(pki.Backup);
        }

        TestCluster.AssertUnchanged(before, Tls);
    }

    [Fact]
    public void A_truncated_key_stops_the_start_naming_the_file_and_the_command_that_reissues_it()
    {
        using (Open())
        {
        }

        Truncate(Path.Combine(Tls, "supervisor.key"));
        var before = TestCluster.Snapshot(Directory.Root);

        var refused = Assert.Throws<TlsMaterialException>(Open);

        Assert.Contains(Path.Combine(Tls, "supervisor.key"), refused.Message, StringComparison.Ordinal);
        Assert.Contains("airlock certificate rotate --service supervisor", refused.Message, StringComparison.Ordinal);
        TestCluster.AssertUnchanged(before, Directory.Root);
    }

    [Fact]
    public void A_key_that_does_not_match_its_certificate_stops_the_start()
    {
        using (Open())
        {
        }

        File.Copy(Path.Combine(Tls, "registry.key"), Path.Combine(Tls, "supervisor.key"), overwrite: true);
        var before = TestCluster.Snapshot(Directory.Root);

        var refused = Assert.Throws<TlsMaterialException>(Open);

        Assert.Contains("does not match the certificate", refused.Message, StringComparison.Ordinal);
        TestCluster.AssertUnchanged(before, Directory.Root);
    }

    [Fact]
    public void A_truncated_CA_key_is_never_replaced()
    {
        using (Open())
        {
        }

        Truncate(Path.Combine(Tls, "server-ca.key"));
        var before = TestCluster.Snapshot(Directory.Root);

        var refused = Assert.Throws<TlsMaterialException>(Open);

        Assert.Contains("server-ca.key", refused.Message, StringComparison.Ordinal);
        Assert.Contains("never replaced by itself", refused.Message, StringComparison.Ordinal);
        TestCluster.AssertUnchanged(before, Directory.Root);
    }

    [Fact]
    public void Rotate_backs_up_and_reissues_only_the_named_services()
    {
        byte[] supervisor, registry;
        using (var pki = Open())
        {
            WriteToken(pki);
            supervisor = pki[ClusterService.Supervisor].Certificate.RawData;
            registry = pki[ClusterService.Registry].Certificate.RawData;
        }

        _time.Advance(TimeSpan.FromSeconds(5));
        var result = CertificateRotation.Rotate(Options(), [ClusterService.Supervisor]);

        Assert.Equal([ClusterService.Supervisor], result.Reissued);
        Assert.True(File.Exists(Path.Combine(result.Backup, "supervisor.crt")));
        Assert.Equal(supervisor, LoadPem(Path.Combine(result.Backup, "supervisor.crt")).RawData);
        Assert.NotEqual(supervisor, LoadPem(Path.Combine(Tls, "supervisor.crt")).RawData);
        Assert.Equal(registry, LoadPem(Path.Combine(Tls, "registry.crt")).RawData);
    }

    [Fact]
    public async Task Rotate_ca_cross_signs_the_new_CAs_so_the_old_ones_still_verify_what_they_issue()
    {
        JoinToken oldToken;
        using (var pki = Open())
        {
            oldToken = WriteToken(pki);
        }

        var oldServerCa = File.ReadAllText(Path.Combine(Tls, "server-ca.crt"));
        var oldClientCa = File.ReadAllText(Path.Combine(Tls, "client-ca.crt"));
        _time.Advance(TimeSpan.FromSeconds(5));

        var result = CertificateRotation.RotateCa(Options(), path: null);

        Assert.NotEqual(oldToken.CaHash, result.Token!.CaHash);
        Assert.Equal(oldToken.Secret, result.Token.Secret);
        Assert.Equal(result.Token.ToString(), File.ReadAllText(Directory.Token).Trim());
        var oldServerCaFile = Path.Combine(_root.Path, "old-server-ca.crt");
        var oldClientCaFile = Path.Combine(_root.Path, "old-client-ca.crt");
        File.WriteAllText(oldServerCaFile, oldServerCa);
        File.WriteAllText(oldClientCaFile, oldClientCa);
        var now = _time.GetUtcNow();
        // A node that only knows the old CA accepts the new certificates (they carry the cross-signed CA)…
        await Openssl.VerifyAsync(oldServerCaFile, Path.Combine(Tls, "supervisor.crt"), "sslserver", now);
        await Openssl.VerifyAsync(oldClientCaFile, Path.Combine(Tls, "client-admin.crt"), "sslclient", now);
        // …and one that learned the new bundle does too; the old CA stays in it.
        await Openssl.VerifyAsync(Path.Combine(Tls, "server-ca.crt"), Path.Combine(Tls, "registry.crt"), "sslserver", now);
        Assert.Contains(oldServerCa.Trim(), File.ReadAllText(Path.Combine(Tls, "server-ca.crt")), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(result.Backup, "server-ca.key")));
        using var reopened = Open();
        Assert.Null(reopened.Backup);
    }

    [Fact]
    public void Rotate_ca_takes_the_operators_CAs_and_refuses_ones_that_are_not()
    {
        using (var pki = Open())
        {
            WriteToken(pki);
        }

        var given = System.IO.Directory.CreateDirectory(Path.Combine(_root.Path, "given")).FullName;
        foreach (var name in new[] { "server-ca", "client-ca" })
        {
            using var ca = CertificateAuthority.Create($"operator {name}", TimeSpan.FromDays(1000), _time);
            ca.Save(Path.Combine(given, name + ".crt"), Path.Combine(given, name + ".key"));
        }

        File.Copy(Path.Combine(Tls, "supervisor.crt"), Path.Combine(given, "client-ca.crt"), overwrite: true);
        File.Copy(Path.Combine(Tls, "supervisor.key"), Path.Combine(given, "client-ca.key"), overwrite: true);
        var before = TestCluster.Snapshot(Directory.Root);
        var refused = Assert.Throws<TlsMaterialException>(() => CertificateRotation.RotateCa(Options(), given));
        Assert.Contains("is not a CA certificate", refused.Message, StringComparison.Ordinal);
        TestCluster.AssertUnchanged(before, Directory.Root);

        using (var ca = CertificateAuthority.Create("operator client-ca", TimeSpan.FromDays(1000), _time))
        {
            ca.Save(Path.Combine(given, "client-ca.crt"), Path.Combine(given, "client-ca.key"));
        }

        CertificateRotation.RotateCa(Options(), given);
        using var rotated = Open();
        Assert.Equal("CN=operator server-ca", rotated.ServerCa.Signer.Subject);
        Assert.Equal("CN=operator client-ca", rotated.ClientCa.Signer.Subject);
    }

    [Fact]
    public async Task Rotation_is_refused_while_the_server_runs()
    {
        await using var cluster = await TestCluster.StartAsync(time: _time);
        var before = TestCluster.Snapshot(cluster.Directory.Root);
        var options = new ServerPkiOptions { Directory = cluster.Directory, Time = _time };

        var refused = Assert.Throws<ServerRunningException>(() => CertificateRotation.Rotate(options, []));
        Assert.Contains("an airlock server is running from", refused.Message, StringComparison.Ordinal);
        Assert.Throws<ServerRunningException>(() => CertificateRotation.RotateCa(options, null));

        TestCluster.AssertUnchanged(before, cluster.Directory.Root);
    }

    [Fact]
    public async Task A_data_directory_owned_by_another_user_is_refused_and_left_alone()
    {
        var data = System.IO.Directory.CreateDirectory(Path.Combine(_root.Path, "theirs")).FullName;
        File.WriteAllText(Path.Combine(data, "marker"), "theirs");
        await ChownAsync(data, 65534);

        var refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(() =>
            Airlock.Cluster.Supervisor.ClusterServer.StartAsync(new Airlock.Cluster.Supervisor.ClusterServerOptions { DataDirectory = data, Time = _time }, CancellationToken.None));

        Assert.Contains("belongs to user id 65534", refused.Message, StringComparison.Ordinal);
        Assert.Contains("chown", refused.Message, StringComparison.Ordinal);
        Assert.Equal(["marker"], System.IO.Directory.EnumerateFileSystemEntries(data).Select(Path.GetFileName));
    }

    /// <summary>What the server writes at its start beside the PKI: rotate-ca rewrites it with the new hash.</summary>
    private JoinToken WriteToken(ServerPki pki) => ClusterTokens.Ensure(Directory, pki.ServerCa.Hash, null, null, _time).ServerToken;

    private static X509Certificate2 LoadPem(string path) => X509Certificate2.CreateFromPem(File.ReadAllText(path));

    private ServerPkiOptions Options() => new()
    {
        Directory = Directory,
        TlsSans = ["server.airgap.test", "203.0.113.9"],
        NodeName = "test-server",
        Time = _time,
    };

    private ServerPki Open() => ServerPki.Open(Options());

    private static void Truncate(string path)
    {
        using var file = File.OpenWrite(path);
        file.SetLength(file.Length / 2);
    }

    private static async Task ChownAsync(string path, int uid)
    {
        var result = await Tool.RunAsync("chown", [uid.ToString(System.Globalization.CultureInfo.InvariantCulture), path]);
        Assert.True(result.Succeeded, result.ToString());
    }
}
