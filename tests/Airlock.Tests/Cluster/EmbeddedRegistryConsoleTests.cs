using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Airlock.Cluster.Pki;

namespace Airlock.Tests.Cluster;

/// <summary>The console of the registry <c>airlock server --embedded-registry</c> runs shows the cluster's members.</summary>
public sealed class EmbeddedRegistryConsoleTests
{
    [Fact]
    public async Task The_embedded_registrys_api_lists_the_members_with_their_certificate_expiry()
    {
        await using var cluster = await TestCluster.StartAsync(options => options with { EmbeddedRegistry = new IPEndPoint(IPAddress.Loopback, 0) });
        await cluster.JoinAsync("node-a");

        var trusted = cluster.Server.Pki.ServerCa.Trusted;
        using var admin = X509Certificate2.CreateFromPemFile(
            Path.Combine(cluster.Directory.Tls, "client-admin.crt"), Path.Combine(cluster.Directory.Tls, "client-admin.key"));
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = CaTrust.Callback(() => trusted, cluster.Time, checkName: false);
        handler.SslOptions.ClientCertificates = [admin];
        using var client = new HttpClient(handler) { BaseAddress = cluster.Server.Registry!.Address, Timeout = TimeSpan.FromSeconds(20) };

        using var response = await client.GetAsync(new Uri("/api/v1/cluster", UriKind.Relative));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");

        using var document = JsonDocument.Parse(body);
        var nodes = document.RootElement.GetProperty("nodes").EnumerateArray().ToList();
        var node = Assert.Single(nodes, n => n.GetProperty("name").GetString() == "node-a");
        Assert.Equal("agent", node.GetProperty("role").GetString());
        Assert.Equal("192.0.2.10", node.GetProperty("address").GetString());
        Assert.True(node.GetProperty("certificateNotAfter").GetDateTimeOffset() > cluster.Time.GetUtcNow());
        Assert.Equal(cluster.Server.Membership.Find("node-a")!.LastSeen, node.GetProperty("lastSeen").GetDateTimeOffset());
    }
}
