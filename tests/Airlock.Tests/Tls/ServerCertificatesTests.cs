using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Airlock.Registry;
using Airlock.Tests.Registry.Auth;
using Airlock.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Airlock.Tests.Tls;

public sealed class ServerCertificatesTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-tls-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Tls => Path.Combine(_directory, "registry", "tls");

    [Fact]
    public async Task Self_signed_server_certificate_is_accepted_by_a_client_trusting_only_the_CA()
    {
        var material = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], TimeProvider.System);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(material.ServerCertificate));
            k.Listen(IPAddress.IPv6Loopback, 0, l => l.UseHttps(material.ServerCertificate));
        });
        await using var app = builder.Build();
        app.MapGet("/v2/", () => "{}");
        await app.StartAsync();
        var port = app.Urls.Select(u => new Uri(u)).Single(u => u.Host == "127.0.0.1").Port;
        var port6 = app.Urls.Select(u => new Uri(u)).Single(u => u.Host == "[::1]").Port;
        using var ca = X509CertificateLoader.LoadCertificateFromFile(material.CaCertificatePath!);

        foreach (var address in new[] { $"localhost:{port}", $"127.0.0.1:{port}", $"[::1]:{port6}" })
        {
            using var trusting = ClientTrusting(ca);
            using var response = await trusting.GetAsync(new Uri($"https://{address}/v2/"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // A client that trusts only some other CA refuses the connection.
        using var other = CertificateAuthority.Create("Someone Else", TimeSpan.FromDays(1), TimeProvider.System);
        using var stranger = ClientTrusting(other.Certificate);
        await Assert.ThrowsAsync<HttpRequestException>(() => stranger.GetAsync(new Uri($"https://localhost:{port}/v2/")));
        await app.StopAsync();
    }

    [Fact]
    public async Task Openssl_verifies_the_server_certificate_against_the_CA_for_every_name()
    {
        var material = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, ["registry.example.internal", "10.1.2.3"], TimeProvider.System);
        var ca = material.CaCertificatePath!;
        var server = Path.Combine(Tls, ServerCertificates.ServerCertificateFile);

        foreach (var check in new[] { "-verify_hostname localhost", "-verify_hostname registry.example.internal", "-verify_ip 10.1.2.3", "-verify_ip ::1", $"-verify_hostname {Dns.GetHostName().ToLowerInvariant()}" })
        {
            var (exit, output) = await OpensslAsync($"verify -CAfile {ca} {check} {server}");
            Assert.True(exit == 0, $"openssl verify {check}: {output}");
            Assert.Contains($"{server}: OK", output, StringComparison.Ordinal);
        }

        var (wrongExit, _) = await OpensslAsync($"verify -CAfile {ca} -verify_hostname elsewhere.example {server}");
        Assert.NotEqual(0, wrongExit);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Keys_are_private_and_a_second_start_reuses_CA_and_server_certificate()
    {
        var first = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], TimeProvider.System);
        var caBytes = File.ReadAllBytes(Path.Combine(Tls, ServerCertificates.CaCertificateFile));

        var second = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], TimeProvider.System);

        Assert.Equal(first.ServerCertificate.Thumbprint, second.ServerCertificate.Thumbprint);
        Assert.Equal(caBytes, File.ReadAllBytes(Path.Combine(Tls, ServerCertificates.CaCertificateFile)));
        Assert.True(second.ServerCertificate.HasPrivateKey);
        foreach (var key in new[] { ServerCertificates.CaKeyFile, ServerCertificates.ServerKeyFile })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(Tls, key)));
        }

        using var ca = X509CertificateLoader.LoadCertificateFromFile(first.CaCertificatePath!);
        Assert.InRange((ca.NotAfter - DateTime.Now).TotalDays, 3649, 3651);
        Assert.InRange((first.ServerCertificate.NotAfter - DateTime.Now).TotalDays, 364, 366);
        Assert.Empty(Directory.GetFiles(Tls, "*.tmp"));
    }

    [Fact]
    public void Server_certificate_is_renewed_within_120_days_of_expiry_under_the_same_CA()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var first = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], clock);
        var caBytes = File.ReadAllBytes(Path.Combine(Tls, ServerCertificates.CaCertificateFile));

        clock.Advance(TimeSpan.FromDays(240));
        var notYet = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], clock);
        clock.Advance(TimeSpan.FromDays(10));
        var renewed = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], clock);

        Assert.Equal(first.ServerCertificate.Thumbprint, notYet.ServerCertificate.Thumbprint);
        Assert.NotEqual(first.ServerCertificate.Thumbprint, renewed.ServerCertificate.Thumbprint);
        Assert.True(renewed.ServerCertificate.NotAfter > first.ServerCertificate.NotAfter.AddDays(200));
        Assert.Equal(caBytes, File.ReadAllBytes(Path.Combine(Tls, ServerCertificates.CaCertificateFile)));
        using var onDisk = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(Tls, ServerCertificates.ServerCertificateFile));
        Assert.Equal(renewed.ServerCertificate.Thumbprint, onDisk.Thumbprint);
    }

    [Fact]
    public void A_new_extra_name_reissues_the_server_certificate_with_it()
    {
        var first = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], TimeProvider.System);
        var second = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, ["mirror.site.lan"], TimeProvider.System);

        Assert.NotEqual(first.ServerCertificate.Thumbprint, second.ServerCertificate.Thumbprint);
        var names = second.ServerCertificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames();
        Assert.Contains("mirror.site.lan", names);
        Assert.Contains("localhost", names);
    }

    [Fact]
    public void A_corrupt_CA_is_an_error_and_is_not_replaced()
    {
        ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], TimeProvider.System);
        var caKey = Path.Combine(Tls, ServerCertificates.CaKeyFile);
        File.WriteAllText(caKey, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");

        var error = Assert.Throws<TlsMaterialException>(() => ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], TimeProvider.System));

        Assert.StartsWith(caKey, error.Message, StringComparison.Ordinal);
        Assert.Contains("not a key", File.ReadAllText(caKey), StringComparison.Ordinal);
    }

    [Fact]
    public void Registries_yaml_snippet_names_the_registry_and_the_CA_file()
    {
        var material = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], TimeProvider.System);

        Assert.Equal(
            $"configs:\n  \"registry.lan:5000\":\n    tls:\n      ca_file: \"{material.CaCertificatePath}\"\n",
            RegistryCertificate.RenderRegistriesYaml("registry.lan:5000", material.CaCertificatePath!));
        Assert.Equal(
            "configs:\n  \"10.0.0.1:5000\":\n    tls:\n      ca_file: \"/var/lib/airlock/registry/tls/ca.crt\"\n",
            RegistryCertificate.RenderRegistriesYaml("10.0.0.1:5000", "/var/lib/airlock/registry/tls/ca.crt"));
        Assert.Equal(
            "configs:\n  \"[::1]:5000\":\n    tls:\n      ca_file: \"/ca.crt\"\n    auth:\n      username: \"node\"\n      password: \"p\\\"w\\\\x\"\n",
            RegistryCertificate.RenderRegistriesYaml("[::1]:5000", "/ca.crt", "node", "p\"w\\x"));
    }

    [Fact]
    public void Registries_yaml_snippet_is_read_back_by_a_YAML_parser_with_the_same_values()
    {
        var material = ServerCertificates.EnsureSelfSigned(Tls, RegistryCertificate.CommonName, [], TimeProvider.System);
        var yaml = RegistryCertificate.RenderRegistriesYaml("registry.lan:5000", "/etc/ca \"x\".crt", "node", "p\"w\\x: #\n\t");

        var stream = new YamlDotNet.RepresentationModel.YamlStream();
        stream.Load(new StringReader(yaml));
        var config = (YamlDotNet.RepresentationModel.YamlMappingNode)((YamlDotNet.RepresentationModel.YamlMappingNode)((YamlDotNet.RepresentationModel.YamlMappingNode)stream.Documents[0].RootNode)["configs"])["registry.lan:5000"];

        Assert.Equal("/etc/ca \"x\".crt", ((YamlDotNet.RepresentationModel.YamlScalarNode)((YamlDotNet.RepresentationModel.YamlMappingNode)config["tls"])["ca_file"]).Value);
        Assert.Equal("p\"w\\x: #\n\t", ((YamlDotNet.RepresentationModel.YamlScalarNode)((YamlDotNet.RepresentationModel.YamlMappingNode)config["auth"])["password"]).Value);
    }

    [Fact]
    public void Operator_certificate_and_key_files_load_with_their_chain()
    {
        using var ca = CertificateAuthority.Create("Site CA", TimeSpan.FromDays(30), TimeProvider.System);
        using var leaf = ca.Issue(new LeafCertificateRequest("registry", ["registry.lan"], [], TimeSpan.FromDays(10)));
        var certificatePath = Path.Combine(_directory, "tls.crt");
        var keyPath = Path.Combine(_directory, "tls.key");
        PemFiles.Write(leaf, certificatePath, keyPath);
        File.AppendAllText(certificatePath, ca.Certificate.ExportCertificatePem() + "\n");

        var material = ServerCertificates.LoadFiles(certificatePath, keyPath, TimeProvider.System);

        Assert.Equal(leaf.Thumbprint, material.ServerCertificate.Thumbprint);
        Assert.True(material.ServerCertificate.HasPrivateKey);
        Assert.Equal(ca.Certificate.Thumbprint, Assert.Single(material.Chain).Thumbprint);
        Assert.Null(material.CaCertificatePath);
    }

    [Fact]
    public void Operator_files_that_are_missing_mismatched_malformed_or_expired_are_refused_naming_the_file()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        using var ca = CertificateAuthority.Create("Site CA", TimeSpan.FromDays(3650), clock);
        using var leaf = ca.Issue(new LeafCertificateRequest("registry", ["registry.lan"], [], TimeSpan.FromDays(10)));
        using var otherLeaf = ca.Issue(new LeafCertificateRequest("other", ["other.lan"], [], TimeSpan.FromDays(10)));
        var certificatePath = Path.Combine(_directory, "tls.crt");
        var keyPath = Path.Combine(_directory, "tls.key");
        var otherKeyPath = Path.Combine(_directory, "other.key");
        var garbagePath = Path.Combine(_directory, "garbage.crt");
        PemFiles.Write(leaf, certificatePath, keyPath);
        PemFiles.Write(otherLeaf, Path.Combine(_directory, "other.crt"), otherKeyPath);
        File.WriteAllText(garbagePath, "hello\n");

        var missing = Assert.Throws<TlsMaterialException>(() => ServerCertificates.LoadFiles(Path.Combine(_directory, "absent.crt"), keyPath, clock));
        Assert.Equal($"{Path.Combine(_directory, "absent.crt")}: certificate file does not exist", missing.Message);
        var missingKey = Assert.Throws<TlsMaterialException>(() => ServerCertificates.LoadFiles(certificatePath, Path.Combine(_directory, "absent.key"), clock));
        Assert.Equal($"{Path.Combine(_directory, "absent.key")}: private key file does not exist", missingKey.Message);
        var unreadable = Assert.Throws<TlsMaterialException>(() => ServerCertificates.LoadFiles(_directory, keyPath, clock));
        Assert.StartsWith($"{_directory}: certificate file is not readable", unreadable.Message, StringComparison.Ordinal);
        var mismatched = Assert.Throws<TlsMaterialException>(() => ServerCertificates.LoadFiles(certificatePath, otherKeyPath, clock));
        Assert.StartsWith($"{otherKeyPath}: private key does not match the certificate", mismatched.Message, StringComparison.Ordinal);
        var garbage = Assert.Throws<TlsMaterialException>(() => ServerCertificates.LoadFiles(garbagePath, keyPath, clock));
        Assert.StartsWith($"{garbagePath}: contains no PEM certificate", garbage.Message, StringComparison.Ordinal);
        var garbageKey = Assert.Throws<TlsMaterialException>(() => ServerCertificates.LoadFiles(certificatePath, garbagePath, clock));
        Assert.StartsWith($"{garbagePath}: not a usable private key for {certificatePath}", garbageKey.Message, StringComparison.Ordinal);

        clock.Advance(TimeSpan.FromDays(11));
        var expired = Assert.Throws<TlsMaterialException>(() => ServerCertificates.LoadFiles(certificatePath, keyPath, clock));
        Assert.StartsWith($"{certificatePath}: certificate CN=registry expired on", expired.Message, StringComparison.Ordinal);
    }

    private static HttpClient ClientTrusting(X509Certificate2 ca) => new(new SocketsHttpHandler
    {
        SslOptions = new SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
                {
                    return false;
                }

                using var leaf = new X509Certificate2(certificate);
                return CertificateTrust.ChainsTo(leaf, [ca], DateTimeOffset.UtcNow);
            },
        },
    });

    private static async Task<(int ExitCode, string Output)> OpensslAsync(string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("openssl", arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output + error);
    }
}
