using System.Collections.Concurrent;
using Airlock.Bundles;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

public sealed class ImageGraphTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>
    /// Counts blob reads and how many run at once. With <paramref name="holdUntilConcurrent"/>, the first reads
    /// wait until that many are open together (or every blob is), so an overlap the copy should make is a fact
    /// the test sees, not a matter of timing.
    /// </summary>
    private sealed class ObservedSource(IImageSource inner, int holdUntilConcurrent = 1, int blobs = int.MaxValue) : IImageSource
    {
        private readonly TaskCompletionSource _overlapped = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _current;
        private int _opened;

        public ConcurrentDictionary<Digest, int> Opened { get; } = new();

        public int MaxConcurrent { get; private set; }

        public ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) => inner.ResolveAsync(reference, cancellationToken);

        public ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken) =>
            inner.ReadManifestAsync(manifest, cancellationToken);

        public async ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken)
        {
            Opened.AddOrUpdate(blob.Digest, 1, (_, n) => n + 1);
            var now = Interlocked.Increment(ref _current);
            lock (Opened)
            {
                MaxConcurrent = Math.Max(MaxConcurrent, now);
            }

            var opened = Interlocked.Increment(ref _opened);
            if (now >= holdUntilConcurrent || opened >= blobs)
            {
                _overlapped.TrySetResult();
            }

            await _overlapped.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            var stream = await inner.OpenBlobAsync(blob, cancellationToken);
            var content = new MemoryStream();
            await stream.CopyToAsync(content, cancellationToken);
            await stream.DisposeAsync();
            Interlocked.Decrement(ref _current);
            content.Position = 0;
            return content;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>Records the order content is written in.</summary>
    private sealed class RecordingTarget(IImageTarget inner) : IImageTarget
    {
        public ConcurrentQueue<Digest> Written { get; } = new();

        public ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken) => inner.HasBlobAsync(blob, cancellationToken);

        public async ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken)
        {
            await inner.WriteBlobAsync(blob, content, cancellationToken);
            Written.Enqueue(blob.Digest);
        }

        public ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken) => inner.HasManifestAsync(manifest, cancellationToken);

        public async ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken)
        {
            await inner.WriteManifestAsync(manifest, content, reference, cancellationToken);
            Written.Enqueue(manifest.Digest);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private async Task<(OciLayoutStore Layout, Descriptor Index, Descriptor[] Images, TestImages.Layer[] Layers)> ThreePlatformIndexAsync()
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        var layers = Enumerable.Range(1, 4).Select(i => TestImages.MakeLayer(i)).ToArray();
        var images = new[]
        {
            await TestImages.AddImageAsync(layout, TestImages.Amd64, [layers[0], layers[1]]),
            await TestImages.AddImageAsync(layout, TestImages.Arm64, [layers[0], layers[2]]),
            await TestImages.AddImageAsync(layout, TestImages.S390x, [layers[0], layers[3]]),
        };
        var index = await TestImages.AddIndexAsync(layout, images, "example.com/multi:1");
        return (layout, index, images, layers);
    }

    [Fact]
    public async Task Children_are_written_before_the_manifests_and_index_that_name_them()
    {
        var (source, index, images, _) = await ThreePlatformIndexAsync();
        await using var target = OciLayoutStore.Create(_temp.File("target"));
        var recording = new RecordingTarget(target);
        await ImageGraph.CopyAsync(source, recording, index, null, null, CancellationToken.None);
        var order = recording.Written.ToList();
        Assert.Equal(index.Digest, order[^1]);
        foreach (var image in images)
        {
            var document = ManifestDocument.Parse((await source.ReadManifestAsync(image, CancellationToken.None)).Span, image.MediaType);
            Assert.All(document.Children, child => Assert.True(order.IndexOf(child.Digest) < order.IndexOf(image.Digest)));
        }
    }

    [Fact]
    public async Task Copy_keeps_manifest_bytes_so_digests_are_unchanged()
    {
        var (source, index, images, _) = await ThreePlatformIndexAsync();
        await using var target = OciLayoutStore.Create(_temp.File("target"));
        var written = await ImageGraph.CopyAsync(source, target, index, new CopyOptions { Reference = "example.com/multi:1" }, null, CancellationToken.None);
        Assert.Equal(index.Digest, written.Digest);
        foreach (var manifest in images.Append(index))
        {
            Assert.Equal((await source.ReadManifestAsync(manifest, CancellationToken.None)).ToArray(), (await target.ReadManifestAsync(manifest, CancellationToken.None)).ToArray());
        }
    }

    [Fact]
    public async Task One_platform_copies_only_that_manifest_and_its_blobs()
    {
        var (source, index, images, layers) = await ThreePlatformIndexAsync();
        await using var target = OciLayoutStore.Create(_temp.File("target"));
        var written = await ImageGraph.CopyAsync(source, target, index,
            new CopyOptions { Platforms = [Platform.Parse("linux/arm64")], Reference = "example.com/multi:1" }, null, CancellationToken.None);
        Assert.Equal(images[1].Digest, written.Digest);
        Assert.Equal(images[1].Digest, (await target.ResolveAsync("example.com/multi:1", CancellationToken.None)).Digest);
        Assert.True(await target.HasBlobAsync(layers[2].Descriptor, CancellationToken.None));
        Assert.False(await target.HasBlobAsync(layers[1].Descriptor, CancellationToken.None));
        Assert.False(await target.HasManifestAsync(index, CancellationToken.None));
    }

    [Fact]
    public async Task Several_platforms_of_an_index_become_a_new_index_with_a_new_digest()
    {
        var (source, index, images, layers) = await ThreePlatformIndexAsync();
        await using var target = OciLayoutStore.Create(_temp.File("target"));
        var written = await ImageGraph.CopyAsync(source, target, index,
            new CopyOptions { Platforms = [Platform.Parse("linux/arm64"), Platform.Parse("linux/amd64")] }, null, CancellationToken.None);
        Assert.NotEqual(index.Digest, written.Digest);
        var document = ManifestDocument.Parse((await target.ReadManifestAsync(written, CancellationToken.None)).Span, written.MediaType);
        Assert.Equal([images[0].Digest, images[1].Digest], document.Manifests.Select(m => m.Digest));
        Assert.False(await target.HasBlobAsync(layers[3].Descriptor, CancellationToken.None));
    }

    [Fact]
    public async Task A_platform_the_index_lacks_is_refused_naming_the_platforms_it_has()
    {
        var (source, index, _, _) = await ThreePlatformIndexAsync();
        await using var target = OciLayoutStore.Create(_temp.File("target"));
        var error = await Assert.ThrowsAsync<ImageNotFoundException>(() =>
            ImageGraph.CopyAsync(source, target, index, new CopyOptions { Platforms = [Platform.Parse("windows/amd64")] }, null, CancellationToken.None));
        Assert.Contains("windows/amd64", error.Message, StringComparison.Ordinal);
        Assert.Contains("linux/s390x", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_compressed_save_reports_every_phase_planned_fetched_ahead_and_written_into_the_archive()
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        await using var _ = layout;
        var layers = Enumerable.Range(80, 3).Select(i => TestImages.MakeLayer(i, 3 << 19)).ToList();
        var image = await TestImages.AddImageAsync(layout, TestImages.Amd64, layers);
        var progress = new List<CopyProgress>();
        await using var target = Airlock.Bundles.Archive.ArchiveTarget.Create(_temp.File("out.tar.gz"));

        await ImageGraph.CopyAsync(layout, target, image, new CopyOptions { Parallelism = 4 }, new SyncProgress(p => { lock (progress) { progress.Add(p); } }),
            CancellationToken.None);

        var firstStart = progress.FindIndex(p => p.Stage == CopyStage.Started);
        Assert.Equal(layers.Select(l => l.Descriptor.Digest.ToString()).Order(StringComparer.Ordinal), progress.Take(firstStart).Where(p => p.Stage == CopyStage.Planned)
            .Select(p => p.Content.Digest.ToString()).Where(d => layers.Any(l => l.Descriptor.Digest.ToString() == d)).Order(StringComparer.Ordinal));
        // The layers download ahead while the config is written, and are counted again as they go into the archive
        // (compressed): the bytes a bar shows are the archive's, not the download's.
        foreach (var layer in layers)
        {
            var events = progress.Where(p => p.Content.Digest == layer.Descriptor.Digest).ToList();
            Assert.Contains(events, p => p.Stage == CopyStage.Fetching);
            var lastFetch = events.FindLastIndex(p => p.Stage == CopyStage.Fetching);
            Assert.Contains(events.Skip(lastFetch), p => p.Stage == CopyStage.Transferring && p.Bytes >= 1 << 20);
            Assert.Equal(CopyStage.Completed, events[^1].Stage);
        }
    }

    [Fact]
    public async Task Blobs_the_target_has_are_skipped_and_reported_as_skipped()
    {
        var (source, index, _, _) = await ThreePlatformIndexAsync();
        await using var target = OciLayoutStore.Create(_temp.File("target"));
        await ImageGraph.CopyAsync(source, target, index, null, null, CancellationToken.None);
        var observed = new ObservedSource(source);
        var stages = new ConcurrentBag<CopyProgress>();
        await using var again = OciLayoutStore.Open(target.Root);
        await ImageGraph.CopyAsync(observed, again, index, null, new SyncProgress(stages.Add), CancellationToken.None);
        Assert.Empty(observed.Opened);
        Assert.Contains(stages, p => p.Stage == CopyStage.Skipped);
    }

    [Fact]
    public async Task Shared_layers_are_read_once_across_concurrent_copies_and_parallelism_is_bounded()
    {
        var (source, _, images, layers) = await ThreePlatformIndexAsync();
        await using var target = OciLayoutStore.Create(_temp.File("target"));
        var observed = new ObservedSource(source);
        var progress = new ConcurrentBag<CopyProgress>();
        var options = new CopyOptions { Parallelism = 2 };
        await Task.WhenAll(images.Select(image => ImageGraph.CopyAsync(observed, target, image, options, new SyncProgress(progress.Add), CancellationToken.None)));
        Assert.Equal(1, observed.Opened[layers[0].Descriptor.Digest]);
        Assert.All(observed.Opened.Values, count => Assert.Equal(1, count));
        Assert.InRange(observed.MaxConcurrent, 1, 2 * images.Length);
        Assert.Contains(progress, p => p.Stage == CopyStage.Completed && p.Content.Digest == layers[0].Descriptor.Digest && p.Bytes == layers[0].Compressed.Length);
    }

    [Fact]
    public async Task Parallelism_bounds_the_blob_transfers_of_one_copy()
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        await using var _ = layout;
        var image = await TestImages.AddImageAsync(layout, TestImages.Amd64, Enumerable.Range(10, 8).Select(i => TestImages.MakeLayer(i)).ToList());
        await using var target = OciLayoutStore.Create(_temp.File("target"));
        var observed = new ObservedSource(layout, holdUntilConcurrent: 3, blobs: 9);
        await ImageGraph.CopyAsync(observed, target, image, new CopyOptions { Parallelism = 3 }, null, CancellationToken.None);
        Assert.Equal(9, observed.Opened.Count);
        Assert.Equal(3, observed.MaxConcurrent);
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; tests need the reports before the copy returns.</summary>
    private sealed class SyncProgress(Action<CopyProgress> report) : IProgress<CopyProgress>
    {
        public void Report(CopyProgress value) => report(value);
    }
}

public sealed class ImageGraphReferrersTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Referrers_returned_by_the_hook_are_copied_after_their_subject()
    {
        await using var source = OciLayoutStore.Create(_temp.File("source"));
        var image = await TestImages.AddImageAsync(source, TestImages.Amd64, [TestImages.MakeLayer(50)]);
        var emptyDigest = Digest.Sha256("{}"u8);
        var signature = System.Text.Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"artifactType\":\"application/vnd.example.signature\","
            + $"\"config\":{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"{emptyDigest}\",\"size\":2}},"
            + $"\"layers\":[{{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":\"{emptyDigest}\",\"size\":2}}],"
            + $"\"subject\":{{\"mediaType\":\"{image.MediaType}\",\"digest\":\"{image.Digest}\",\"size\":{image.Size}}}}}");
        var empty = new Descriptor { MediaType = MediaTypes.OciEmpty, Digest = Digest.Sha256("{}"u8), Size = 2 };
        await source.WriteBlobAsync(empty, new MemoryStream("{}"u8.ToArray()), CancellationToken.None);
        var referrer = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256(signature), Size = signature.Length };
        await source.WriteManifestAsync(referrer, signature, null, CancellationToken.None);

        await using var target = OciLayoutStore.Create(_temp.File("target"));
        var asked = new List<Digest>();
        await ImageGraph.CopyAsync(source, target, image, new CopyOptions
        {
            Referrers = (subject, _) =>
            {
                asked.Add(subject.Digest);
                return ValueTask.FromResult<IReadOnlyList<Descriptor>>(subject.Digest == image.Digest ? [referrer] : []);
            },
        }, null, CancellationToken.None);
        Assert.Contains(image.Digest, asked);
        Assert.True(await target.HasManifestAsync(referrer, CancellationToken.None));
        Assert.True(await target.HasBlobAsync(empty, CancellationToken.None));

        await using var without = OciLayoutStore.Create(_temp.File("without"));
        await ImageGraph.CopyAsync(source, without, image, null, null, CancellationToken.None);
        Assert.False(await without.HasManifestAsync(referrer, CancellationToken.None));
    }
}
