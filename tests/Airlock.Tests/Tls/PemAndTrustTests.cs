using Airlock.Tests.Registry.Auth;
using Airlock.Tls;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Tls;

public sealed class PemAndTrustTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-pem-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_CA_bundle_is_written_and_read_back_in_order_and_trusts_leaves_of_either_CA_only()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        using var first = CertificateAuthority.Create("First CA", TimeSpan.FromDays(100), clock);
        using var second = CertificateAuthority.Create("Second CA", TimeSpan.FromDays(100), clock);
        using var stranger = CertificateAuthority.Create("Stranger CA", TimeSpan.FromDays(100), clock);
        var bundle = Path.Combine(_directory, "bundle.crt");
        PemFiles.WriteCertificates([first.Certificate, second.Certificate], bundle);

        var roots = PemFiles.ReadCertificates(bundle, "CA");

        Assert.Equal([first.Certificate.Thumbprint, second.Certificate.Thumbprint], roots.Select(c => c.Thumbprint));
        Assert.False(roots[0].HasPrivateKey);
        using var fromSecond = second.Issue(new LeafCertificateRequest("a", ["a.lan"], [], TimeSpan.FromDays(10)));
        using var fromStranger = stranger.Issue(new LeafCertificateRequest("b", ["b.lan"], [], TimeSpan.FromDays(10)));
        Assert.True(CertificateTrust.ChainsTo(fromSecond, roots, clock.GetUtcNow()));
        Assert.False(CertificateTrust.ChainsTo(fromStranger, roots, clock.GetUtcNow()));
        Assert.False(CertificateTrust.ChainsTo(fromSecond, roots, clock.GetUtcNow().AddDays(11)));
        Assert.False(CertificateTrust.ChainsTo(fromSecond, [], clock.GetUtcNow()));
    }

    [Fact]
    public void Reading_a_file_that_is_missing_or_holds_no_certificate_names_the_file_and_its_role()
    {
        var empty = Path.Combine(_directory, "empty.crt");
        File.WriteAllText(empty, "no PEM here\n");

        var missing = Assert.Throws<TlsMaterialException>(() => PemFiles.ReadCertificates(Path.Combine(_directory, "absent.crt"), "CA"));
        var none = Assert.Throws<TlsMaterialException>(() => PemFiles.ReadCertificates(empty, "CA"));

        Assert.Equal($"{Path.Combine(_directory, "absent.crt")}: CA file does not exist", missing.Message);
        Assert.Equal($"{empty}: contains no PEM certificate (-----BEGIN CERTIFICATE-----)", none.Message);
    }

    [Fact]
    public void Client_trust_refuses_a_half_given_client_pair_and_a_missing_CA_naming_the_server()
    {
        var halfPair = Assert.Throws<TlsMaterialException>(() => new ClientTrust(
            [KeyValuePair.Create("registry.lan:5000", new TlsSettings { CertFile = "/etc/client.crt" })], false, TimeProvider.System, NullLogger.Instance));
        var missingCa = Assert.Throws<TlsMaterialException>(() => new ClientTrust(
            [KeyValuePair.Create("registry.lan:5000", new TlsSettings { CaFile = "/nonexistent/ca.crt" })], false, TimeProvider.System, NullLogger.Instance));

        Assert.Equal("registry.lan:5000: cert_file and key_file must be given together", halfPair.Message);
        Assert.Equal("registry.lan:5000: /nonexistent/ca.crt: CA file does not exist", missingCa.Message);
    }

    [Theory]
    [InlineData("registry.lan", "registry.lan")]
    [InlineData("registry.lan:5000", "registry.lan")]
    [InlineData("[::1]:5000", "::1")]
    [InlineData("[fd00::1]", "fd00::1")]
    [InlineData("127.0.0.1:443", "127.0.0.1")]
    public void Client_trust_matches_servers_by_host_name_whatever_the_port(string server, string host) =>
        Assert.Equal(host, ClientTrust.HostName(server));
}
