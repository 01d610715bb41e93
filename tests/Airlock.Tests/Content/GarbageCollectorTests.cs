using System.Net;
using System.Text;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Airlock.Tests.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

public sealed class GarbageCollectorTests
{
    private static readonly TimeSpan Grace = TimeSpan.FromHours(1);

    [Fact]
    public async Task Collection_keeps_referenced_and_young_blobs_and_deletes_old_unreferenced_ones_while_a_pull_runs()
    {
        await using var registry = await TestRegistry.StartAsync(o => o with { ZeroCopy = false });
        var layer = new byte[8 * 1024 * 1024];
        new Random(5).NextBytes(layer);
        var image = await registry.PushImageAsync("app", "v1", layer);
        var oldOrphan = await registry.PushBlobOkAsync("app", Encoding.UTF8.GetBytes("old orphan"));
        var youngOrphan = await registry.PushBlobOkAsync("app", Encoding.UTF8.GetBytes("young orphan, a push in flight"));
        // A push in progress elsewhere; one into "app" would keep its unreferenced links for now.
        using (var session = await registry.Client.PostAsync("/v2/other/blobs/uploads/", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, session.StatusCode);
        }

        var storage = registry.Server.Storage;
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(3);
        foreach (var digest in new[] { oldOrphan, image.LayerDigest, image.ConfigDigest, image.ManifestDigest })
        {
            File.SetLastWriteTimeUtc(storage.Layout.Blob(digest), longAgo);
            if (digest != image.ManifestDigest)
            {
                File.SetLastWriteTimeUtc(storage.Layout.BlobLink("app", digest), longAgo);
            }
        }

        var oldSession = storage.Uploads.Create("app");
        Directory.SetLastWriteTimeUtc(storage.Layout.UploadDirectory(oldSession), longAgo);

        using var pull = await registry.Client.GetAsync($"/v2/app/blobs/{image.LayerDigest}", HttpCompletionOption.ResponseHeadersRead);
        var body = await pull.Content.ReadAsStreamAsync();
        var head = new byte[4096];
        await body.ReadExactlyAsync(head);

        var collector = new GarbageCollector(storage, Grace, NullLogger.Instance);
        var dryRun = await collector.CollectAsync(dryRun: true, CancellationToken.None);
        Assert.Equal([oldOrphan], dryRun.DeletedBlobs);
        Assert.True(File.Exists(storage.Layout.Blob(oldOrphan)));

        var result = await collector.CollectAsync(dryRun: false, CancellationToken.None);
        Assert.Equal([oldOrphan], result.DeletedBlobs);
        Assert.Equal([("app", oldOrphan)], result.DeletedLinks);
        Assert.Equal([oldSession], result.DeletedUploads);

        var rest = new MemoryStream();
        await body.CopyToAsync(rest);
        Assert.Equal(image.LayerDigest, Digest.Sha256(head.Concat(rest.ToArray()).ToArray()));

        Assert.False(File.Exists(storage.Layout.Blob(oldOrphan)));
        Assert.True(File.Exists(storage.Layout.Blob(youngOrphan)));
        using var orphanGet = await registry.Client.GetAsync($"/v2/app/blobs/{oldOrphan}");
        Assert.Equal(HttpStatusCode.NotFound, orphanGet.StatusCode);
        Assert.Equal(image.Manifest, await registry.Client.GetByteArrayAsync("/v2/app/manifests/v1"));
        Assert.Equal(image.Config, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.ConfigDigest}"));
        Assert.Single(storage.Uploads.List());
    }

    [Fact]
    public async Task Re_pushing_an_old_unreferenced_blob_protects_it_from_the_next_collection()
    {
        await using var registry = await TestRegistry.StartAsync();
        var content = Encoding.UTF8.GetBytes("pushed long ago, pushed again now");
        var digest = await registry.PushBlobOkAsync("one", content);
        var storage = registry.Server.Storage;
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(3);
        File.SetLastWriteTimeUtc(storage.Layout.Blob(digest), longAgo);
        File.SetLastWriteTimeUtc(storage.Layout.BlobLink("one", digest), longAgo);

        // A second push of the same content commits onto the existing file; it must count as young.
        await registry.PushBlobOkAsync("two", content);
        var result = await new GarbageCollector(storage, Grace, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        Assert.Empty(result.DeletedBlobs);
        Assert.Equal(content, await registry.Client.GetByteArrayAsync($"/v2/two/blobs/{digest}"));
    }

    [Fact]
    public async Task Manifest_put_racing_a_sweep_is_either_accepted_with_its_blobs_or_refused()
    {
        await using var registry = await TestRegistry.StartAsync();
        var storage = registry.Server.Storage;
        var image = TestImage.Create(Encoding.UTF8.GetBytes("layer pushed before the collection"));
        await registry.PushBlobOkAsync("app", image.Config);
        await registry.PushBlobOkAsync("app", image.Layer);
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(3);
        foreach (var digest in new[] { image.ConfigDigest, image.LayerDigest })
        {
            File.SetLastWriteTimeUtc(storage.Layout.Blob(digest), longAgo);
            File.SetLastWriteTimeUtc(storage.Layout.BlobLink("app", digest), longAgo);
        }

        // A reference in flight holds the sweep at its first deletion; the put then races it.
        var inFlight = await storage.Guard.EnterReferenceAsync(CancellationToken.None);
        var collection = new GarbageCollector(storage, Grace, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        await Task.Delay(100);
        var put = registry.PutManifestAsync("app", "v1", image.Manifest);
        await Task.Delay(100);
        inFlight.Dispose();
        using var response = await put;
        await collection;

        if (response.StatusCode == HttpStatusCode.Created)
        {
            Assert.Equal(image.Layer, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.LayerDigest}"));
            Assert.Equal(image.Config, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.ConfigDigest}"));
        }
        else
        {
            await TestRegistry.AssertError(response, HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
            using var get = await registry.Client.GetAsync("/v2/app/manifests/v1");
            Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        }
    }

    [Fact]
    public async Task A_collector_on_a_store_opened_apart_waits_for_a_reference_in_flight_and_keeps_what_it_references()
    {
        await using var registry = await TestRegistry.StartAsync();
        var storage = registry.Server.Storage;
        var image = TestImage.Create(Encoding.UTF8.GetBytes("layer pushed before the collection"));
        await registry.PushBlobOkAsync("app", image.Config);
        await registry.PushBlobOkAsync("app", image.Layer);
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(3);
        foreach (var digest in new[] { image.ConfigDigest, image.LayerDigest })
        {
            File.SetLastWriteTimeUtc(storage.Layout.Blob(digest), longAgo);
            File.SetLastWriteTimeUtc(storage.Layout.BlobLink("app", digest), longAgo);
        }

        // What `airlock registry gc` opens beside a running registry: its own storage and guard, so only the
        // lock files and the journal coordinate the two.
        await using var apart = RegistryStorage.OpenForCollection(registry.DataDirectory, TimeProvider.System, NullLogger.Instance);
        Assert.False(apart.Exclusive);

        var inFlight = await storage.Guard.EnterReferenceAsync(CancellationToken.None);
        var collection = new GarbageCollector(apart, Grace, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        await Task.Delay(300);
        Assert.False(collection.IsCompleted);

        // References go on meanwhile (pushes are not stopped); this one lands before the mark.
        using (var response = await registry.PutManifestAsync("app", "v1", image.Manifest))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        inFlight.Dispose();
        var result = await collection;
        Assert.Empty(result.DeletedBlobs);
        Assert.Equal(image.Layer, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.LayerDigest}"));

        // A second collection at once is refused, whichever process runs it.
        var first = new GarbageCollector(apart, Grace, NullLogger.Instance);
        var inFlightAgain = await storage.Guard.EnterReferenceAsync(CancellationToken.None);
        var running = first.CollectAsync(dryRun: true, CancellationToken.None);
        await Task.Delay(100);
        await Assert.ThrowsAsync<GarbageCollectionBusyException>(() => new GarbageCollector(storage, Grace, NullLogger.Instance).CollectAsync(dryRun: true, CancellationToken.None));
        inFlightAgain.Dispose();
        await running;
    }

    [Fact]
    public async Task A_collector_opened_while_no_registry_serves_is_exclusive_and_a_registry_starting_then_waits()
    {
        var data = Directory.CreateTempSubdirectory("airlock-gc-exclusive-").FullName;
        try
        {
            var apart = RegistryStorage.OpenForCollection(data, TimeProvider.System, NullLogger.Instance);
            Assert.True(apart.Exclusive);
            var starting = Task.Run(() => RegistryStorage.Open(data, TimeProvider.System, NullLogger.Instance));
            await Task.Delay(300);
            Assert.False(starting.IsCompleted);
            await apart.DisposeAsync();
            await using var serving = await starting.WaitAsync(TimeSpan.FromSeconds(10));
            await using var besideIt = RegistryStorage.OpenForCollection(data, TimeProvider.System, NullLogger.Instance);
            Assert.False(besideIt.Exclusive);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
