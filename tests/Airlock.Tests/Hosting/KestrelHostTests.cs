using System.Net;
using System.Net.Security;
using Airlock.Hosting;
using Airlock.Tls;
using Microsoft.AspNetCore.Http;

namespace Airlock.Tests.Hosting;

public sealed class KestrelHostTests
{
    [Fact]
    public async Task An_unspecified_listen_address_is_reached_over_loopback_with_plain_HTTP_1_1_and_no_Server_header()
    {
        await using var host = await KestrelHost.StartAsync(
            new KestrelHostOptions { Listen = new IPEndPoint(IPAddress.Any, 0) },
            context => context.Response.WriteAsync(context.Request.Protocol),
            CancellationToken.None);

        Assert.StartsWith("http://0.0.0.0:", host.BoundAddress, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1", host.Address.Host);
        using var client = new HttpClient();
        using var response = await client.GetAsync(host.Address);
        Assert.Equal("HTTP/1.1", await response.Content.ReadAsStringAsync());
        Assert.Empty(response.Headers.Server);
    }

    [Fact]
    public async Task With_a_certificate_it_serves_HTTPS_and_HTTP_2_and_stops_on_dispose()
    {
        using var ca = CertificateAuthority.Create("Test CA", TimeSpan.FromDays(1), TimeProvider.System);
        using var certificate = ca.Issue(new LeafCertificateRequest("server", ["localhost"], [IPAddress.Loopback], TimeSpan.FromDays(1)));
        var host = await KestrelHost.StartAsync(
            new KestrelHostOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), Certificate = certificate },
            context => context.Response.WriteAsync(context.Request.Protocol),
            CancellationToken.None);
        var address = host.Address;
        using var client = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && CertificateTrust.ChainsTo(new(presented), [ca.Certificate], DateTimeOffset.UtcNow),
            },
        });

        using (var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, address) { Version = HttpVersion.Version20 }))
        {
            Assert.Equal("https", address.Scheme);
            Assert.Equal("HTTP/2", await response.Content.ReadAsStringAsync());
        }

        await host.DisposeAsync();
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(address));
    }
}
