using System.Net;
using System.Security.Cryptography.X509Certificates;
using Airlock.Tests.Registry.Auth;
using Airlock.Tls;

namespace Airlock.Tests.Tls;

public sealed class CertificateAuthorityTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-ca-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Issues_client_certificates_that_chain_to_the_CA_after_a_save_and_load()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var certificatePath = Path.Combine(_directory, "ca.crt");
        var keyPath = Path.Combine(_directory, "ca.key");
        using (var created = CertificateAuthority.Create("Cluster CA", TimeSpan.FromDays(3650), clock))
        {
            created.Save(certificatePath, keyPath);
        }

        using var ca = CertificateAuthority.Load(certificatePath, keyPath, clock);
        using var client = ca.Issue(new LeafCertificateRequest("system:node:worker-1", [], [], TimeSpan.FromDays(365), CertificateUsage.Client));
        using var both = ca.Issue(new LeafCertificateRequest("peer", ["peer.lan"], [IPAddress.Parse("10.0.0.2")], TimeSpan.FromDays(30), CertificateUsage.Server | CertificateUsage.Client));

        Assert.True(ca.Verifies(client));
        Assert.Equal("CN=system:node:worker-1", client.Subject);
        Assert.Equal(["1.3.6.1.5.5.7.3.2"], client.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Select(o => o.Value));
        Assert.Equal(2, both.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Count);
        Assert.True(client.HasPrivateKey);
        Assert.False(client.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);

        clock.Advance(TimeSpan.FromDays(366));
        Assert.False(ca.Verifies(client));
    }

    [Fact]
    public void Leaf_lifetime_is_capped_at_the_CA_expiry()
    {
        using var ca = CertificateAuthority.Create("Short CA", TimeSpan.FromDays(10), TimeProvider.System);

        using var leaf = ca.Issue(new LeafCertificateRequest("x", ["x.lan"], [], TimeSpan.FromDays(365)));

        Assert.True(leaf.NotAfter <= ca.Certificate.NotAfter);
        Assert.True(ca.Verifies(leaf));
    }

    [Fact]
    public void Loading_a_leaf_as_CA_is_refused()
    {
        using var ca = CertificateAuthority.Create("Real CA", TimeSpan.FromDays(10), TimeProvider.System);
        using var leaf = ca.Issue(new LeafCertificateRequest("x", ["x.lan"], [], TimeSpan.FromDays(5)));
        var certificatePath = Path.Combine(_directory, "leaf.crt");
        var keyPath = Path.Combine(_directory, "leaf.key");
        PemFiles.Write(leaf, certificatePath, keyPath);

        var error = Assert.Throws<TlsMaterialException>(() => CertificateAuthority.Load(certificatePath, keyPath, TimeProvider.System));

        Assert.Equal($"{certificatePath}: CN=x is not a CA certificate (no basicConstraints CA:TRUE)", error.Message);
    }
}
