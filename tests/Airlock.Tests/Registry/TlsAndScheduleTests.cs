using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;

namespace Airlock.Tests.Registry;

public sealed class TlsAndScheduleTests
{
    [Fact]
    public async Task Registry_with_a_certificate_serves_https_including_large_blobs()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));

        await using var registry = await TestRegistry.StartAsync(o => o with { Certificate = certificate });
        Assert.Equal("https", registry.Server.Address.Scheme);
        using var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == certificate.Thumbprint,
        };
        using var client = new HttpClient(handler) { BaseAddress = registry.Server.Address };
        var content = new byte[1024 * 1024];
        new Random(9).NextBytes(content);
        var digest = Digest.Sha256(content);
        using (var push = await client.PostAsync($"/v2/secure/blobs/uploads/?digest={digest}", new ByteArrayContent(content)))
        {
            Assert.Equal(HttpStatusCode.Created, push.StatusCode);
        }

        Assert.Equal(content, await client.GetByteArrayAsync($"/v2/secure/blobs/{digest}"));
    }

    [Fact]
    public async Task Scheduled_collection_removes_unreferenced_blobs_older_than_the_grace()
    {
        await using var registry = await TestRegistry.StartAsync(o => o with { GcInterval = TimeSpan.FromMilliseconds(200), GcGrace = TimeSpan.FromMinutes(10) });
        var image = await registry.PushImageAsync("app", "v1");
        var orphan = await registry.PushBlobOkAsync("app", Encoding.UTF8.GetBytes("orphan"));
        var path = new StoreLayout(registry.DataDirectory).Blob(orphan);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow - TimeSpan.FromHours(1));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (File.Exists(path) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.False(File.Exists(path));
        Assert.Equal(image.Manifest, await registry.Client.GetByteArrayAsync("/v2/app/manifests/v1"));
        Assert.Equal(image.Layer, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.LayerDigest}"));
    }
}
