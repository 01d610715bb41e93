using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Airlock.Registry;
using Airlock.Registry.Auth;
using Airlock.Registry.PullThrough;
using Airlock.Tests.Registry.Auth;
using Airlock.Tls;
using Microsoft.AspNetCore.Http;

namespace Airlock.Tests.Registry;

/// <summary>The composition of a registry from what an operator configures (<c>airlock registry</c> and embedded registries alike).</summary>
public sealed class RegistrySettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-settings-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Htpasswd()
    {
        var path = Path.Combine(_directory, "htpasswd");
        File.WriteAllLines(path, [HtpasswdFileTests.Entry("alice", "wonderland")]);
        return path;
    }

    private static PullThroughOptions PrivateUpstream() => new()
    {
        Upstreams = [new PullThroughUpstream("quay.io", new Uri("https://quay.io"))],
        Remote = new Airlock.Remote.RemoteOptions
        {
            Credentials = new Airlock.Remote.StaticCredentialSource(new Dictionary<string, Airlock.Remote.RegistryCredential> { ["quay.io"] = new("u", "p") }),
        },
    };

    [Fact]
    public void Every_problem_that_needs_no_file_is_reported_at_once()
    {
        var settings = new RegistrySettings
        {
            Server = new RegistryServerOptions { DataDirectory = _directory, MaxManifestBytes = 0, PullThrough = PrivateUpstream() },
            TlsCertificatePath = "server.crt",
            TlsSelfSigned = true,
            TlsSubjectAlternativeNames = ["registry.example"],
        };

        var problems = settings.Validate();

        Assert.Equal(4, problems.Count);
        Assert.Contains("--max-manifest-bytes must be positive", problems);
        Assert.Contains(problems, p => p.StartsWith("--proxy quay.io=https://quay.io/ has credentials", StringComparison.Ordinal) && p.Contains("--htpasswd", StringComparison.Ordinal));
        Assert.Contains("--tls-cert and --tls-key must be given together", problems);
        Assert.Contains("--tls-self-signed and --tls-cert/--tls-key exclude each other", problems);
    }

    [Fact]
    public void A_subject_alternative_name_without_a_self_signed_certificate_is_refused_rather_than_ignored()
    {
        var settings = new RegistrySettings { Server = new RegistryServerOptions { DataDirectory = _directory }, TlsSubjectAlternativeNames = ["registry.example"] };

        Assert.Equal(["--tls-san names the self-signed certificate's extra names; it needs --tls-self-signed"], settings.Validate());
    }

    [Fact]
    public void A_private_upstream_is_accepted_once_a_users_file_authenticates_clients()
    {
        var settings = new RegistrySettings
        {
            Server = new RegistryServerOptions { DataDirectory = _directory, PullThrough = PrivateUpstream() },
            Auth = new RegistryAuthOptions { HtpasswdPath = Htpasswd() },
        };

        Assert.Empty(settings.Validate());
    }

    [Fact]
    public async Task Invalid_settings_refuse_to_start_listing_every_problem()
    {
        var settings = new RegistrySettings { Server = new RegistryServerOptions { DataDirectory = _directory }, TlsCertificatePath = "a.crt", TlsSelfSigned = true };

        var refused = await Assert.ThrowsAsync<ArgumentException>(() => RegistryServer.StartAsync(settings, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, CancellationToken.None));

        Assert.Contains("--tls-cert and --tls-key must be given together", refused.Message, StringComparison.Ordinal);
        Assert.Contains("--tls-self-signed and --tls-cert/--tls-key exclude each other", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_self_signed_registry_serves_https_with_a_certificate_of_the_CA_under_its_data_directory()
    {
        await using var registry = await TestRegistry.StartComposedAsync(settings => settings with { TlsSelfSigned = true, TlsSubjectAlternativeNames = ["registry.example"] });

        var caPath = registry.Server.Tls?.CaCertificatePath;
        Assert.Equal(Path.Combine(registry.DataDirectory, "registry", "tls", ServerCertificates.CaCertificateFile), caPath);
        Assert.Equal("https", registry.Server.Address.Scheme);
        Assert.Contains("registry.example", registry.Server.Tls!.ServerCertificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single().EnumerateDnsNames());
        using var ca = X509CertificateLoader.LoadCertificateFromFile(caPath!);
        using var client = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    using var chain = new X509Chain();
                    chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                    chain.ChainPolicy.CustomTrustStore.Add(ca);
                    chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                    return certificate is not null && !errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) && chain.Build(new X509Certificate2(certificate));
                },
            },
        })
        { BaseAddress = registry.Server.Address };

        using var response = await client.GetAsync(new Uri("/v2/", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task An_operator_certificate_file_with_its_chain_is_served_with_that_chain()
    {
        // Clients that trust only the site's root need the intermediates the operator put after the leaf.
        // (A root is never sent, as TLS has it: the file holds the leaf and an intermediate the root signed.)
        using var root = CertificateAuthority.Create("Site Root CA", TimeSpan.FromDays(30), TimeProvider.System);
        using var issuing = CertificateAuthority.Create("Site Issuing CA", TimeSpan.FromDays(30), TimeProvider.System);
        using var intermediate = root.CrossSign(issuing.Certificate);
        using var leaf = issuing.Issue(new LeafCertificateRequest("registry", ["localhost"], [IPAddress.Loopback], TimeSpan.FromDays(10)));
        var certificatePath = Path.Combine(_directory, "tls.crt");
        var keyPath = Path.Combine(_directory, "tls.key");
        PemFiles.Write(leaf, certificatePath, keyPath);
        File.AppendAllText(certificatePath, intermediate.ExportCertificatePem() + "\n");
        await using var registry = await TestRegistry.StartComposedAsync(settings => settings with { TlsCertificatePath = certificatePath, TlsKeyPath = keyPath });

        var sent = new List<string>();
        using var client = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, _, chain, _) =>
                {
                    // What the server sent besides its leaf is in the chain's extra store.
                    sent.AddRange(chain!.ChainPolicy.ExtraStore.Select(c => c.Thumbprint));
                    return true;
                },
            },
        })
        { BaseAddress = registry.Server.Address };

        using var response = await client.GetAsync(new Uri("/v2/", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(intermediate.Thumbprint, sent);
    }

    [Fact]
    public async Task Token_mode_serves_the_token_endpoint_beside_the_extra_endpoints_and_keeps_its_key_in_the_data_directory()
    {
        var htpasswd = Htpasswd();
        await using var registry = await TestRegistry.StartComposedAsync(settings => settings with
        {
            Server = settings.Server with { ExtraEndpoints = [new RegistryEndpoint("/extra", context => context.Response.WriteAsync("extra"))] },
            Auth = new RegistryAuthOptions { HtpasswdPath = htpasswd, UseTokens = true },
        });

        using (var anonymous = await registry.Client.GetAsync(new Uri("/v2/", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        }

        using var tokenRequest = new HttpRequestMessage(HttpMethod.Get, "/token?service=airlock&scope=repository:app:pull");
        tokenRequest.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:wonderland")));
        using var tokenResponse = await registry.Client.SendAsync(tokenRequest);
        Assert.Equal(HttpStatusCode.OK, tokenResponse.StatusCode);
        using var token = JsonDocument.Parse(await tokenResponse.Content.ReadAsStringAsync());
        Assert.True(File.Exists(Path.Combine(registry.DataDirectory, "registry", "token", "key.pem")));

        using var authorized = new HttpRequestMessage(HttpMethod.Get, "/v2/");
        authorized.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.RootElement.GetProperty("token").GetString());
        using (var withToken = await registry.Client.SendAsync(authorized))
        {
            Assert.Equal(HttpStatusCode.OK, withToken.StatusCode);
        }

        Assert.Equal("extra", await registry.Client.GetStringAsync(new Uri("/extra", UriKind.Relative)));
    }

    [Fact]
    public async Task A_users_file_that_cannot_be_used_fails_the_start_naming_it()
    {
        var htpasswd = Path.Combine(_directory, "htpasswd");
        await File.WriteAllTextAsync(htpasswd, "alice:$apr1$abc$def\n");

        var refused = await Assert.ThrowsAsync<AuthConfigurationException>(() => TestRegistry.StartComposedAsync(
            settings => settings with { Auth = new RegistryAuthOptions { HtpasswdPath = htpasswd } }));

        Assert.StartsWith($"{htpasswd}:1:", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_certificate_file_that_cannot_be_used_fails_the_start_naming_it()
    {
        var certificate = Path.Combine(_directory, "server.crt");
        await File.WriteAllTextAsync(certificate, "not a certificate\n");

        var refused = await Assert.ThrowsAsync<TlsMaterialException>(() => TestRegistry.StartComposedAsync(
            settings => settings with { TlsCertificatePath = certificate, TlsKeyPath = Path.Combine(_directory, "server.key") }));

        Assert.Contains(certificate, refused.Message, StringComparison.Ordinal);
    }
}
