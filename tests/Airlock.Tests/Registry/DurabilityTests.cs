using System.Net;
using System.Text;
using Airlock.Oci;

namespace Airlock.Tests.Registry;

public sealed class DurabilityTests
{
    [Fact]
    public async Task Upload_session_survives_a_server_restart()
    {
        var data = Directory.CreateTempSubdirectory("airlock-restart-").FullName;
        try
        {
            var content = Encoding.UTF8.GetBytes("first half|second half");
            string location;
            var first = await TestRegistry.StartAsync(dataDirectory: data);
            using (var start = await first.Client.PostAsync("/v2/app/blobs/uploads/", null))
            {
                location = start.Headers.Location!.OriginalString;
            }

            using (var patch = await BlobApiTests.PatchAsync(first, location, content[..11], "0-10"))
            {
                Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            }

            await first.StopKeepingDataAsync();

            await using var second = await TestRegistry.StartAsync(dataDirectory: data);
            using (var status = await second.Client.GetAsync(location))
            {
                Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
                Assert.Equal("0-10", status.Headers.GetValues("Range").Single());
            }

            using (var patch = await BlobApiTests.PatchAsync(second, location, content[11..15], "11-14"))
            {
                Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            }

            var digest = Digest.Sha256(content);
            using var put = await second.Client.PutAsync($"{location}?digest={digest}", new ByteArrayContent(content[15..]));
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            Assert.Equal(content, await second.Client.GetByteArrayAsync($"/v2/app/blobs/{digest}"));
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Start_up_removes_stale_ingest_files()
    {
        var data = Directory.CreateTempSubdirectory("airlock-stale-").FullName;
        try
        {
            var ingest = Path.Combine(data, "registry", "ingest");
            Directory.CreateDirectory(ingest);
            await File.WriteAllTextAsync(Path.Combine(ingest, "left-by-a-crash"), "partial");
            await using var registry = await TestRegistry.StartAsync(dataDirectory: data);
            Assert.Empty(Directory.EnumerateFiles(ingest));
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Sixteen_clients_pushing_the_same_image_all_succeed_and_each_blob_is_stored_once()
    {
        await using var registry = await TestRegistry.StartAsync();
        var layer = new byte[512 * 1024];
        new Random(11).NextBytes(layer);
        var image = TestImage.Create(layer);

        async Task PushChunked(byte[] content)
        {
            using var start = await registry.Client.PostAsync("/v2/shared/app/blobs/uploads/", null);
            Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
            var location = start.Headers.Location!.OriginalString;
            var half = content.Length / 2;
            using (var patch = await BlobApiTests.PatchAsync(registry, location, content[..half], $"0-{half - 1}"))
            {
                Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            }

            using var put = await registry.Client.PutAsync($"{location}?digest={Digest.Sha256(content)}", new ByteArrayContent(content[half..]));
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            await PushChunked(image.Config);
            await PushChunked(image.Layer);
            using var put = await registry.PutManifestAsync("shared/app", "v1", image.Manifest);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }));

        Assert.Equal(3, await registry.CountStoredBlobsAsync());
        Assert.Equal(image.Manifest, await registry.Client.GetByteArrayAsync("/v2/shared/app/manifests/v1"));
        Assert.Equal(layer, await registry.Client.GetByteArrayAsync($"/v2/shared/app/blobs/{image.LayerDigest}"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(registry.DataDirectory, "registry", "uploads")));
    }
}
