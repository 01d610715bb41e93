using System.Net;
using System.Text;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Airlock.Tests.Registry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>
/// Garbage collection beside a serving registry. Where a test needs the collection at a given point (marked and
/// about to delete, or just after a deletion) it runs it on a <see cref="GatedStore"/>, which stops it there until
/// the test lets it go: the interleavings are set by the test, never left to timing.
/// </summary>
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
        var layout = new StoreLayout(registry.DataDirectory);
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(3);
        foreach (var digest in new[] { oldOrphan, image.LayerDigest, image.ConfigDigest, image.ManifestDigest })
        {
            File.SetLastWriteTimeUtc(layout.Blob(digest), longAgo);
            if (digest != image.ManifestDigest)
            {
                File.SetLastWriteTimeUtc(layout.BlobLink("app", digest), longAgo);
            }
        }

        var oldSession = await storage.Uploads.CreateAsync("app", CancellationToken.None);
        Directory.SetLastWriteTimeUtc(layout.UploadDirectory(oldSession), longAgo);

        using var pull = await registry.Client.GetAsync($"/v2/app/blobs/{image.LayerDigest}", HttpCompletionOption.ResponseHeadersRead);
        var body = await pull.Content.ReadAsStreamAsync();
        var head = new byte[4096];
        await body.ReadExactlyAsync(head);

        var collector = new GarbageCollector(storage, Grace, NullLogger.Instance);
        var dryRun = await collector.CollectAsync(dryRun: true, CancellationToken.None);
        Assert.Equal([oldOrphan], dryRun.DeletedBlobs);
        Assert.True(File.Exists(layout.Blob(oldOrphan)));

        var result = await collector.CollectAsync(dryRun: false, CancellationToken.None);
        Assert.Equal([oldOrphan], result.DeletedBlobs);
        Assert.Equal([("app", oldOrphan)], result.DeletedLinks);
        Assert.Equal([oldSession], result.DeletedUploads);

        var rest = new MemoryStream();
        await body.CopyToAsync(rest);
        Assert.Equal(image.LayerDigest, Digest.Sha256(head.Concat(rest.ToArray()).ToArray()));

        Assert.False(File.Exists(layout.Blob(oldOrphan)));
        Assert.True(File.Exists(layout.Blob(youngOrphan)));
        using var orphanGet = await registry.Client.GetAsync($"/v2/app/blobs/{oldOrphan}");
        Assert.Equal(HttpStatusCode.NotFound, orphanGet.StatusCode);
        Assert.Equal(image.Manifest, await registry.Client.GetByteArrayAsync("/v2/app/manifests/v1"));
        Assert.Equal(image.Config, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.ConfigDigest}"));
        Assert.Single(await storage.Uploads.ListAsync(CancellationToken.None).ToListAsync());
    }

    [Fact]
    public async Task Re_pushing_an_old_unreferenced_blob_protects_it_from_the_next_collection()
    {
        await using var registry = await TestRegistry.StartAsync();
        var content = Encoding.UTF8.GetBytes("pushed long ago, pushed again now");
        var digest = await registry.PushBlobOkAsync("one", content);
        var layout = new StoreLayout(registry.DataDirectory);
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(3);
        File.SetLastWriteTimeUtc(layout.Blob(digest), longAgo);
        File.SetLastWriteTimeUtc(layout.BlobLink("one", digest), longAgo);

        // A second push of the same content commits onto the existing file; it must count as young.
        await registry.PushBlobOkAsync("two", content);
        var result = await new GarbageCollector(registry.Server.Storage, Grace, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        Assert.Empty(result.DeletedBlobs);
        Assert.Equal(content, await registry.Client.GetByteArrayAsync($"/v2/two/blobs/{digest}"));
    }

    [Fact]
    public async Task A_manifest_put_after_the_mark_keeps_its_blobs_from_the_sweep()
    {
        await using var registry = await TestRegistry.StartAsync();
        var image = await PushOldBlobsAsync(registry);

        // The collection has marked (nothing references the blobs) and is about to delete the first of them.
        var gated = new GatedStore(registry.Server.Storage) { HoldBeforeFirstSweep = true };
        var collection = new GarbageCollector(gated, Grace, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        await gated.Held.Task;

        using (var response = await registry.PutManifestAsync("app", "v1", image.Manifest))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        gated.Release.SetResult();
        var result = await collection;
        Assert.Empty(result.DeletedBlobs);
        Assert.Equal(image.Layer, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.LayerDigest}"));
        Assert.Equal(image.Config, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.ConfigDigest}"));
    }

    [Fact]
    public async Task A_manifest_put_after_the_sweep_deleted_one_of_its_blobs_is_refused()
    {
        await using var registry = await TestRegistry.StartAsync();
        var image = await PushOldBlobsAsync(registry);

        // The collection has deleted one of the two blobs (config or layer) and let references in again.
        var gated = new GatedStore(registry.Server.Storage) { HoldAfterFirstSweep = true };
        var collection = new GarbageCollector(gated, Grace, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        await gated.Held.Task;

        using (var response = await registry.PutManifestAsync("app", "v1", image.Manifest))
        {
            await TestRegistry.AssertError(response, HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
        }

        // The put checked (and so protected) the config before it found the layer missing, if the layer went first.
        gated.Release.SetResult();
        var result = await collection;
        Assert.NotEmpty(result.DeletedBlobs);
        using var get = await registry.Client.GetAsync("/v2/app/manifests/v1");
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }

    [Fact]
    public async Task A_collector_on_a_store_opened_apart_waits_for_a_reference_in_flight_and_keeps_what_it_references()
    {
        await using var registry = await TestRegistry.StartAsync();
        var storage = registry.Server.Storage;
        var image = await PushOldBlobsAsync(registry);

        // What `airlock registry gc` opens beside a running registry: its own store instance and guard, so only the
        // lock files and the journal coordinate the two.
        await using var apart = FileSystemRegistryStore.OpenForCollection(registry.DataDirectory, TimeProvider.System, NullLogger.Instance);
        Assert.False(apart.Exclusive);

        // A reference in flight in the registry: the collection asks to begin, and cannot before the reference is done.
        var inFlight = await storage.Guard.EnterReferenceAsync(CancellationToken.None);
        var gated = new GatedStore(apart);
        var collection = new GarbageCollector(gated, Grace, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        await gated.Beginning.Task;

        // References go on meanwhile (pushes are not stopped); this one lands before the mark.
        using (var response = await registry.PutManifestAsync("app", "v1", image.Manifest))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        await inFlight.DisposeAsync();
        var result = await collection;
        Assert.Empty(result.DeletedBlobs);
        Assert.Equal(image.Layer, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{image.LayerDigest}"));
    }

    [Fact]
    public async Task A_second_collection_while_one_runs_is_refused_whichever_process_runs_it()
    {
        await using var registry = await TestRegistry.StartAsync();
        await using var apart = FileSystemRegistryStore.OpenForCollection(registry.DataDirectory, TimeProvider.System, NullLogger.Instance);
        var gated = new GatedStore(apart) { HoldOnceBegun = true };
        var running = new GarbageCollector(gated, Grace, NullLogger.Instance).CollectAsync(dryRun: true, CancellationToken.None);
        await gated.Held.Task;

        await Assert.ThrowsAsync<GarbageCollectionBusyException>(() => new GarbageCollector(registry.Server.Storage, Grace, NullLogger.Instance).CollectAsync(dryRun: true, CancellationToken.None));
        await Assert.ThrowsAsync<GarbageCollectionBusyException>(() => new GarbageCollector(apart, Grace, NullLogger.Instance).CollectAsync(dryRun: true, CancellationToken.None));
        gated.Release.SetResult();
        await running;
        await new GarbageCollector(registry.Server.Storage, Grace, NullLogger.Instance).CollectAsync(dryRun: true, CancellationToken.None);
    }

    [Fact]
    public async Task A_collector_opened_while_no_registry_serves_is_exclusive_and_a_registry_starting_then_waits()
    {
        var data = Directory.CreateTempSubdirectory("airlock-gc-exclusive-").FullName;
        try
        {
            var apart = FileSystemRegistryStore.OpenForCollection(data, TimeProvider.System, NullLogger.Instance);
            Assert.True(apart.Exclusive);
            var waiting = new WaitingLogger();
            var starting = Task.Run(() => FileSystemRegistryStore.Open(data, TimeProvider.System, waiting));

            // The registry says it waits (it found the store held); it gets in once the collector lets go.
            await waiting.Waiting.Task;
            await apart.DisposeAsync();
            await using var serving = await starting;
            await using var besideIt = FileSystemRegistryStore.OpenForCollection(data, TimeProvider.System, NullLogger.Instance);
            Assert.False(besideIt.Exclusive);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>An image's config and layer pushed to <c>app</c> long ago (older than any grace), its manifest not put.</summary>
    private static async Task<TestImage> PushOldBlobsAsync(TestRegistry registry)
    {
        var image = TestImage.Create(Encoding.UTF8.GetBytes("layer pushed before the collection"));
        await registry.PushBlobOkAsync("app", image.Config);
        await registry.PushBlobOkAsync("app", image.Layer);
        var layout = new StoreLayout(registry.DataDirectory);
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(3);
        foreach (var digest in new[] { image.ConfigDigest, image.LayerDigest })
        {
            File.SetLastWriteTimeUtc(layout.Blob(digest), longAgo);
            File.SetLastWriteTimeUtc(layout.BlobLink("app", digest), longAgo);
        }

        return image;
    }

    /// <summary>
    /// A store that is another store, except that a collection on it reports where it is and stops at one point until
    /// the test releases it: as it asks to begin (<see cref="Beginning"/>), once it has begun, before its first
    /// sweep lease, or right after it.
    /// </summary>
    private sealed class GatedStore(IRegistryStore inner) : IRegistryStore, IGarbageCollectionGuard
    {
        public bool HoldOnceBegun { get; init; }

        public bool HoldBeforeFirstSweep { get; init; }

        public bool HoldAfterFirstSweep { get; init; }

        public TaskCompletionSource Beginning { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Held { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Location => inner.Location;

        public TimeProvider Time => inner.Time;

        public IBlobStore Blobs => inner.Blobs;

        public IRepositoryStore Repositories => inner.Repositories;

        public IUploadSessionStore Uploads => inner.Uploads;

        public IStoreHistory History => inner.History;

        public IGarbageCollectionGuard Guard => this;

        public bool Exclusive => inner.Exclusive;

        public ValueTask<IReferenceLease> EnterReferenceAsync(CancellationToken cancellationToken) => inner.Guard.EnterReferenceAsync(cancellationToken);

        public async ValueTask<ICollectionRun?> TryBeginCollectionAsync(CancellationToken cancellationToken)
        {
            Beginning.TrySetResult();
            var run = await inner.Guard.TryBeginCollectionAsync(cancellationToken);
            if (run is not null && HoldOnceBegun)
            {
                await HoldAsync();
            }

            return run is null ? null : new Run(this, run);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private async Task HoldAsync()
        {
            Held.SetResult();
            await Release.Task;
        }

        private sealed class Run(GatedStore owner, ICollectionRun inner) : ICollectionRun
        {
            private int _sweeps;

            public async ValueTask<ISweepLease> EnterSweepAsync(CancellationToken cancellationToken)
            {
                var first = Interlocked.Increment(ref _sweeps) == 1;
                if (first && owner.HoldBeforeFirstSweep)
                {
                    await owner.HoldAsync();
                }

                var lease = await inner.EnterSweepAsync(cancellationToken);
                return first && owner.HoldAfterFirstSweep ? new HeldAfter(owner, lease) : lease;
            }

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }

        private sealed class HeldAfter(GatedStore owner, ISweepLease inner) : ISweepLease
        {
            public ValueTask<bool> ReferencedSinceBeginAsync(Digest digest, CancellationToken cancellationToken) => inner.ReferencedSinceBeginAsync(digest, cancellationToken);

            public async ValueTask DisposeAsync()
            {
                await inner.DisposeAsync();
                await owner.HoldAsync();
            }
        }
    }

    /// <summary>Completes <see cref="Waiting"/> when the store logs that it waits for a collection to finish.</summary>
    private sealed class WaitingLogger : ILogger
    {
        public TaskCompletionSource Waiting { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (formatter(state, exception).StartsWith("Waiting for the garbage collection", StringComparison.Ordinal))
            {
                Waiting.TrySetResult();
            }
        }
    }
}
