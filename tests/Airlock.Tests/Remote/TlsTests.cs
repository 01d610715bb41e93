using System.Collections.Concurrent;
using Airlock.Oci;
using Airlock.Remote;
using Airlock.Tls;
using Microsoft.AspNetCore.Http;

namespace Airlock.Tests.Remote;

/// <summary>registries.yaml <c>tls</c> semantics: private CA, client certificate, skip-verify; and insecure HTTP fallback.</summary>
public sealed class TlsTests
{
    private static readonly RequestDelegate Tags = async context =>
    {
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync("""{"name":"team/app","tags":["1"]}""");
    };

    private static RemoteOptions HttpsTo(TestHttpServer server, TlsSettings? tls) => new()
    {
        Endpoints = new Dictionary<string, Uri> { [server.Host] = new($"https://{server.Host}") },
        Tls = tls is null ? new Dictionary<string, TlsSettings>() : new Dictionary<string, TlsSettings> { [server.Host] = tls },
    };

    [Fact]
    public async Task A_registry_certificate_from_a_private_CA_is_trusted_only_with_its_ca_file()
    {
        using var certificates = TestCertificates.Create();
        var protocols = new ConcurrentQueue<string>();
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            protocols.Enqueue(context.Request.Protocol);
            await Tags(context);
        }, certificates.Server, requireClientCertificate: false);
        var repo = ImageReference.Parse($"{server.Host}/team/app");

        using (var untrusted = new RegistryClient(HttpsTo(server, null)))
        {
            var ex = await Assert.ThrowsAsync<RegistryException>(() => untrusted.ListTagsAsync(repo, default));
            Assert.Contains(server.Host, ex.Message, StringComparison.Ordinal);
            // What to do, not .NET's "The remote certificate is invalid according to the validation procedure".
            Assert.EndsWith($"{server.Host}'s certificate is not signed by a trusted CA: set configs.{server.Host}.tls.ca_file, or --insecure",
                ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("validation procedure", ex.Message, StringComparison.Ordinal);
        }

        using (var trusted = new RegistryClient(HttpsTo(server, new TlsSettings { CaFile = certificates.CaFile })))
        {
            Assert.Equal(["1"], await trusted.ListTagsAsync(repo, default));
        }

        // TLS negotiates HTTP/2 (ALPN) with a server that offers it.
        Assert.Equal("HTTP/2", Assert.Single(protocols));

        using (var skipping = new RegistryClient(HttpsTo(server, new TlsSettings { InsecureSkipVerify = true })))
        {
            Assert.Equal(["1"], await skipping.ListTagsAsync(repo, default));
        }
    }

    [Fact]
    public async Task The_client_certificate_of_the_registry_is_presented_when_asked_for()
    {
        using var certificates = TestCertificates.Create();
        var presented = new ConcurrentQueue<string>();
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            var certificate = await context.Connection.GetClientCertificateAsync();
            presented.Enqueue(certificate?.Subject ?? "(none)");
            await Tags(context);
        }, certificates.Server, requireClientCertificate: true);

        using var client = new RegistryClient(HttpsTo(server, new TlsSettings
        {
            CaFile = certificates.CaFile,
            CertFile = certificates.ClientCertFile,
            KeyFile = certificates.ClientKeyFile,
        }));
        Assert.Equal(["1"], await client.ListTagsAsync(ImageReference.Parse($"{server.Host}/team/app"), default));
        Assert.Equal("CN=airlock-client", Assert.Single(presented));
    }

    [Fact]
    public void An_unreadable_ca_file_is_refused_up_front_naming_the_registry_and_file()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => new RegistryClient(new RemoteOptions
        {
            Tls = new Dictionary<string, TlsSettings> { ["registry.example:5000"] = new() { CaFile = "/nonexistent/ca.pem" } },
        }));
        Assert.Contains("registry.example:5000", ex.Message, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/ca.pem", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Insecure_falls_back_to_plain_http_when_the_registry_does_not_speak_tls()
    {
        await using var server = await TestHttpServer.StartAsync(Tags);
        var repo = ImageReference.Parse($"{server.Host}/team/app");
        var secure = HttpsTo(server, null);
        using (var strict = new RegistryClient(secure))
        {
            await Assert.ThrowsAsync<RegistryException>(() => strict.ListTagsAsync(repo, default));
        }

        using var insecure = new RegistryClient(secure with { Insecure = true });
        Assert.Equal(["1"], await insecure.ListTagsAsync(repo, default));
        Assert.Equal(Uri.UriSchemeHttp, insecure.BaseAddress(server.Host).Scheme);
    }

    [Fact]
    public async Task A_loopback_registry_is_tried_over_HTTPS_first_and_over_plain_HTTP_when_it_presents_no_certificate()
    {
        await using var plain = await TestHttpServer.StartAsync(Tags);
        using var certificates = TestCertificates.Create();
        await using var secure = await TestHttpServer.StartAsync(Tags, certificates.Server, requireClientCertificate: false);
        using var client = new RegistryClient(new RemoteOptions
        {
            // registries.yaml's configs for the TLS one, as `airlock registry --tls-self-signed` prints them.
            Tls = new Dictionary<string, TlsSettings> { [secure.Host] = new() { CaFile = certificates.CaFile } },
        });

        Assert.Equal(["1"], await client.ListTagsAsync(ImageReference.Parse($"{plain.Host}/team/app"), default));
        Assert.Equal(["1"], await client.ListTagsAsync(ImageReference.Parse($"{secure.Host}/team/app"), default));

        Assert.Equal(new Uri($"http://{plain.Host}/"), client.BaseAddress(plain.Host));
        Assert.Equal(new Uri($"https://{secure.Host}/"), client.BaseAddress(secure.Host));
    }

    [Fact]
    public async Task A_loopback_registry_that_speaks_TLS_with_an_untrusted_certificate_is_reported_as_such_and_not_tried_over_HTTP()
    {
        using var certificates = TestCertificates.Create();
        var requests = 0;
        await using var secure = await TestHttpServer.StartAsync(context =>
        {
            Interlocked.Increment(ref requests);
            return Tags(context);
        }, certificates.Server, requireClientCertificate: false);
        using var client = new RegistryClient(new RemoteOptions());

        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.ListTagsAsync(ImageReference.Parse($"{secure.Host}/team/app"), default));

        Assert.Contains($"{secure.Host}'s certificate is not signed by a trusted CA: set configs.{secure.Host}.tls.ca_file", ex.Message, StringComparison.Ordinal);
        Assert.Equal(System.Net.Http.HttpRequestError.SecureConnectionError, Assert.IsType<HttpRequestException>(ex.InnerException).HttpRequestError);
        Assert.Equal(new Uri($"https://{secure.Host}/"), client.BaseAddress(secure.Host));
        Assert.Equal(0, requests);
    }
}
