using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

/// <summary>
/// Saving into an archive: the blobs after the one being written download ahead (bounded) into spool files,
/// and are written in a fixed order, so the archive is the same bytes as when written one blob at a time.
/// </summary>
public sealed class ArchiveDownloadAheadTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>Wraps a source: each blob read can be delayed or held, and opens are counted against the blobs the target has written.</summary>
    private sealed class ScriptedSource(IImageSource inner) : IImageSource
    {
        private int _open;

        /// <summary>Runs before a blob's stream ends; may delay or hold it.</summary>
        public Func<Descriptor, CancellationToken, Task>? BeforeEnd { get; init; }

        /// <summary>Delay before a blob's response arrives.</summary>
        public Func<Descriptor, TimeSpan>? OpenDelay { get; init; }

        public ConcurrentQueue<Digest> Finished { get; } = new();

        /// <summary>Most blobs opened and not yet written by the target (see <see cref="Written"/>).</summary>
        public int MaxOpenNotWritten { get; private set; }

        public void Written()
        {
            Interlocked.Decrement(ref _open);
        }

        /// <summary>Waits until <paramref name="count"/> blobs were open and not yet written at one time.</summary>
        public async Task OpenAtOnceAsync(int count, CancellationToken cancellationToken)
        {
            using var patience = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            patience.CancelAfter(TimeSpan.FromSeconds(60));
            while (MaxOpenNotWritten < count)
            {
                await Task.Delay(5, patience.Token);
            }
        }

        public ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) => inner.ResolveAsync(reference, cancellationToken);

        public ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken) =>
            inner.ReadManifestAsync(manifest, cancellationToken);

        public async ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref _open);
            lock (Finished)
            {
                MaxOpenNotWritten = Math.Max(MaxOpenNotWritten, now);
            }

            if (OpenDelay is { } delay)
            {
                await Task.Delay(delay(blob), cancellationToken);
            }

            return new HeldStream(await inner.OpenBlobAsync(blob, cancellationToken), blob, this);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private sealed class HeldStream(Stream inner, Descriptor blob, ScriptedSource source) : Stream
        {
            private long _read;
            private bool _ended;

            public override bool CanRead => true;

            public override bool CanSeek => false;

            public override bool CanWrite => false;

            public override long Length => blob.Size;

            public override long Position
            {
                get => _read;
                set => throw new NotSupportedException();
            }

            public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

            public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            {
                var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, Math.Max(1, blob.Size / 2))], cancellationToken);
                _read += n;
                if ((n == 0 || _read == blob.Size) && !_ended)
                {
                    _ended = true;
                    if (source.BeforeEnd is { } hold)
                    {
                        await hold(blob, cancellationToken);
                    }

                    source.Finished.Enqueue(blob.Digest);
                }

                return n;
            }

            public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
                ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

            public override void Flush()
            {
            }

            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

            public override void SetLength(long value) => throw new NotSupportedException();

            public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

            protected override void Dispose(bool disposing)
            {
                if (disposing)
                {
                    inner.Dispose();
                }

                base.Dispose(disposing);
            }
        }
    }

    /// <summary>An archive that tells the source when each blob is in.</summary>
    private sealed class ObservedArchive(ArchiveTarget inner, ScriptedSource source) : ISequentialImageTarget
    {
        public string SpoolDirectory => inner.SpoolDirectory;

        public ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken) => inner.HasBlobAsync(blob, cancellationToken);

        public async ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken)
        {
            await inner.WriteBlobAsync(blob, content, cancellationToken);
            source.Written();
        }

        public ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken) => inner.HasManifestAsync(manifest, cancellationToken);

        public ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken) =>
            inner.WriteManifestAsync(manifest, content, reference, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>A multi-arch index sharing a base layer, and a second image sharing it too.</summary>
    private async Task<(OciLayoutStore Layout, Descriptor Index, Descriptor Other)> SourceAsync()
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        var layers = Enumerable.Range(1, 7).Select(i => TestImages.MakeLayer(i, 20_000 + (i * 3000))).ToArray();
        var images = new[]
        {
            await TestImages.AddImageAsync(layout, TestImages.Amd64, [layers[0], layers[1], layers[2]]),
            await TestImages.AddImageAsync(layout, TestImages.Arm64, [layers[0], layers[3]]),
            await TestImages.AddImageAsync(layout, TestImages.S390x, [layers[0], layers[4], layers[5]]),
        };
        var index = await TestImages.AddIndexAsync(layout, images, "example.com/multi:1");
        var other = await TestImages.AddImageAsync(layout, TestImages.Amd64, [layers[0], layers[6]], "example.com/other:1");
        return (layout, index, other);
    }

    private async Task<string> SaveAsync(IImageSource source, Descriptor index, Descriptor other, CopyOptions options, string name)
    {
        Directory.CreateDirectory(_temp.File(name));
        var path = _temp.File($"{name}/out.tar");
        await using (var target = ArchiveTarget.Create(path))
        {
            await ImageGraph.CopyAsync(source, target, index, options with { Reference = "example.com/multi:1" }, null, CancellationToken.None);
            await ImageGraph.CopyAsync(source, target, other, options with { Reference = "example.com/other:1" }, null, CancellationToken.None);
            await target.CompleteAsync(CancellationToken.None);
        }

        return path;
    }

    private static string Sha256Of(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(file));
    }

    /// <summary>Spool files still open in this process for archives in <paramref name="directory"/> (spools are unlinked, so only open handles hold them).</summary>
    private static List<string> OpenSpools(string directory) =>
        Directory.GetFiles("/proc/self/fd")
            .Select(fd =>
            {
                try
                {
                    return new FileInfo(fd).LinkTarget;
                }
                catch (IOException)
                {
                    return null;
                }
            })
            .OfType<string>()
            .Where(target => target.StartsWith(directory, StringComparison.Ordinal) && target.Contains(".airlock-spool-", StringComparison.Ordinal))
            .ToList();

    [Fact]
    public async Task Archive_is_the_same_bytes_with_downloads_ahead_as_written_one_blob_at_a_time()
    {
        var (layout, index, other) = await SourceAsync();
        await using var _ = layout;

        // Responses arrive in an order unrelated to the graph (later blobs first, or at random), which must not show in the archive.
        var random = new ConcurrentDictionary<Digest, TimeSpan>();
        var sequential = await SaveAsync(layout, index, other, new CopyOptions { Parallelism = 1 }, "one-at-a-time");
        var reversed = await SaveAsync(new ScriptedSource(layout) { OpenDelay = b => TimeSpan.FromMilliseconds(60 - (b.Size % 50)) },
            index, other, new CopyOptions { Parallelism = 4 }, "ahead-reversed");
        var shuffled = await SaveAsync(new ScriptedSource(layout) { OpenDelay = b => random.GetOrAdd(b.Digest, _ => TimeSpan.FromMilliseconds(Random.Shared.Next(40))) },
            index, other, new CopyOptions { Parallelism = 6, DownloadAheadBytes = 50_000 }, "ahead-shuffled");

        Assert.Equal(Sha256Of(sequential), Sha256Of(reversed));
        Assert.Equal(Sha256Of(sequential), Sha256Of(shuffled));

        // And the archive is whole: every image reads back, the shared layer is stored once.
        var source = await ArchiveSource.OpenAsync(shuffled, new ArchiveLimits(), CancellationToken.None);
        await using (source)
        {
            Assert.Equal(["example.com/multi:1", "example.com/other:1"], source.Entries.Select(OciLayoutStore.NameOf).Order());
        }
    }

    [Fact]
    public async Task Blobs_after_the_one_being_written_download_in_full_meanwhile()
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        await using var _ = layout;
        var layers = Enumerable.Range(20, 4).Select(i => TestImages.MakeLayer(i, 50_000)).ToList();
        var image = await TestImages.AddImageAsync(layout, TestImages.Amd64, layers, "example.com/app:1");
        var config = ManifestDocument.Parse((await layout.ReadManifestAsync(image, CancellationToken.None)).Span, image.MediaType).Config!;

        // The config (first in the archive) cannot end until the last layer has been read to its end: only a download ahead gets there.
        var lastLayerRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new ScriptedSource(layout)
        {
            BeforeEnd = async (blob, ct) =>
            {
                if (blob.Digest == layers[^1].Descriptor.Digest)
                {
                    lastLayerRead.TrySetResult();
                }
                else if (blob.Digest == config.Digest)
                {
                    await lastLayerRead.Task.WaitAsync(TimeSpan.FromSeconds(60), ct);
                }
            },
        };
        Directory.CreateDirectory(_temp.File("out"));
        await using (var target = ArchiveTarget.Create(_temp.File("out/app.tar")))
        {
            await ImageGraph.CopyAsync(source, target, image, new CopyOptions { Parallelism = 5, Reference = "example.com/app:1" }, null, CancellationToken.None);
            await target.CompleteAsync(CancellationToken.None);
        }

        var finished = source.Finished.ToList();
        Assert.True(finished.IndexOf(layers[^1].Descriptor.Digest) < finished.IndexOf(config.Digest));
        Assert.Empty(OpenSpools(_temp.File("out")));
        Assert.Equal(["app.tar"], Directory.GetFileSystemEntries(_temp.File("out")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Images_saved_together_download_ahead_across_images()
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        await using var _ = layout;
        var first = Enumerable.Range(60, 2).Select(i => TestImages.MakeLayer(i, 50_000)).ToList();
        var second = Enumerable.Range(70, 2).Select(i => TestImages.MakeLayer(i, 50_000)).ToList();
        var one = await TestImages.AddImageAsync(layout, TestImages.Amd64, first);
        var two = await TestImages.AddImageAsync(layout, TestImages.Arm64, second);

        // The first image's last layer cannot end until the second image's first layer has been read in full.
        var secondImageRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new ScriptedSource(layout)
        {
            BeforeEnd = async (blob, ct) =>
            {
                if (blob.Digest == second[0].Descriptor.Digest)
                {
                    secondImageRead.TrySetResult();
                }
                else if (blob.Digest == first[^1].Descriptor.Digest)
                {
                    await secondImageRead.Task.WaitAsync(TimeSpan.FromSeconds(60), ct);
                }
            },
        };
        Directory.CreateDirectory(_temp.File("out"));
        await using (var target = ArchiveTarget.Create(_temp.File("out/two.tar")))
        {
            var options = new CopyOptions { Parallelism = 4 };
            var written = await ImageGraph.CopyAllAsync(
                [new GraphCopy(source, one, options with { Reference = "example.com/one:1" }), new GraphCopy(source, two, options with { Reference = "example.com/two:1" })],
                target, null, CancellationToken.None);
            Assert.Equal([one.Digest, two.Digest], written.Select(w => w.Digest));
            await target.CompleteAsync(CancellationToken.None);
        }

        var archive = await ArchiveSource.OpenAsync(_temp.File("out/two.tar"), new ArchiveLimits(), CancellationToken.None);
        await using (archive)
        {
            Assert.Equal(["example.com/one:1", "example.com/two:1"], archive.Entries.Select(OciLayoutStore.NameOf));
        }
    }

    [Theory]
    [InlineData(3, 1L << 30, 3)] // the blob being written and two ahead
    [InlineData(4, 1L, 2)] // a byte budget smaller than any blob: still one ahead
    [InlineData(1, 1L << 30, 1)] // nothing ahead
    public async Task Downloads_ahead_are_bounded_by_count_and_bytes(int parallelism, long aheadBytes, int expectedMax)
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        await using var _ = layout;
        var image = await TestImages.AddImageAsync(layout, TestImages.Amd64, Enumerable.Range(30, 8).Select(i => TestImages.MakeLayer(i, 30_000)).ToList());
        // The first blob to end waits until as many downloads are open as the bounds allow: then the most the
        // copy opened at once is reached on any machine, and more would show.
        var ended = 0;
        ScriptedSource? source = null;
        source = new ScriptedSource(layout)
        {
            BeforeEnd = (_, ct) => Interlocked.Exchange(ref ended, 1) == 0 ? source!.OpenAtOnceAsync(expectedMax, ct) : Task.CompletedTask,
        };
        Directory.CreateDirectory(_temp.File("out"));
        var archive = ArchiveTarget.Create(_temp.File("out/app.tar"));
        await using (archive)
        {
            await ImageGraph.CopyAsync(source, new ObservedArchive(archive, source), image,
                new CopyOptions { Parallelism = parallelism, DownloadAheadBytes = aheadBytes }, null, CancellationToken.None);
        }

        Assert.Equal(expectedMax, source.MaxOpenNotWritten);
    }

    [Fact]
    public async Task A_wrong_blob_downloaded_ahead_fails_the_save_at_once_and_leaves_no_archive_or_spool()
    {
        var layout = OciLayoutStore.Create(_temp.File("bad"));
        await using var _ = layout;
        var layers = Enumerable.Range(40, 4).Select(i => TestImages.MakeLayer(i, 100_000)).ToList();
        var image = await TestImages.AddImageAsync(layout, TestImages.Amd64, layers, "example.com/app:1");
        var blob = layout.BlobPath(layers[^1].Descriptor.Digest);
        var bytes = File.ReadAllBytes(blob);
        bytes[^10] ^= 0xff;
        File.WriteAllBytes(blob, bytes);

        // The first layer never ends by itself: only the failure of the download ahead ends the save.
        var source = new ScriptedSource(layout)
        {
            BeforeEnd = (b, ct) => b.Digest == layers[0].Descriptor.Digest ? Task.Delay(Timeout.Infinite, ct) : Task.CompletedTask,
        };
        Directory.CreateDirectory(_temp.File("out"));
        var target = ArchiveTarget.Create(_temp.File("out/app.tar"));
        await using (target)
        {
            var error = await Assert.ThrowsAsync<DigestMismatchException>(() =>
                ImageGraph.CopyAsync(source, target, image, new CopyOptions { Reference = "example.com/app:1" }, null, CancellationToken.None)
                    .WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal(layers[^1].Descriptor.Digest, error.Expected);
            Assert.Empty(OpenSpools(_temp.File("out")));
        }

        Assert.Empty(Directory.GetFileSystemEntries(_temp.File("out")));
    }

    [Fact]
    public async Task Cancelling_a_save_midway_frees_every_spool_and_leaves_no_file()
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        await using var _ = layout;
        var layers = Enumerable.Range(50, 5).Select(i => TestImages.MakeLayer(i, 60_000)).ToList();
        var image = await TestImages.AddImageAsync(layout, TestImages.Amd64, layers, "example.com/app:1");
        using var cancel = new CancellationTokenSource();
        var spooled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new ScriptedSource(layout)
        {
            BeforeEnd = async (b, ct) =>
            {
                if (b.Digest == layers[0].Descriptor.Digest)
                {
                    await Task.Delay(Timeout.Infinite, ct); // the layer whose turn it is when Ctrl-C comes
                }
                else if (b.Digest == layers[1].Descriptor.Digest)
                {
                    spooled.TrySetResult();
                }
            },
        };
        Directory.CreateDirectory(_temp.File("out"));
        await using (var target = ArchiveTarget.Create(_temp.File("out/app.tar")))
        {
            var copy = ImageGraph.CopyAsync(source, target, image, new CopyOptions { Reference = "example.com/app:1" }, null, cancel.Token);
            await spooled.Task.WaitAsync(TimeSpan.FromSeconds(60));

            // That layer is read to its end; its spool is open once it is handed over to wait for its turn.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (OpenSpools(_temp.File("out")).Count == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "no spool was opened for the layer downloaded ahead");
                await Task.Delay(10);
            }

            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => copy.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Empty(OpenSpools(_temp.File("out")));
        }

        Assert.Empty(Directory.GetFileSystemEntries(_temp.File("out")));
    }
}

/// <summary>Large blobs go through the archive in chunks: downloading ahead holds them in spool files, not in memory.</summary>
[Collection(nameof(AllocationMeasuringCollection))]
public sealed class ArchiveDownloadAheadMemoryTests : IDisposable
{
    private const long LayerSize = 64L << 20;

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>One image whose layers are generated as they are read (pseudo-random, so nothing compresses or repeats).</summary>
    private sealed class GeneratedSource : IImageSource
    {
        private readonly Dictionary<Digest, (long Seed, long Size)> _layers = [];
        private readonly byte[] _config;
        private readonly byte[] _manifest;

        public GeneratedSource(int layers)
        {
            var descriptors = new List<string>();
            for (var seed = 1; seed <= layers; seed++)
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                using var stream = new Generated(seed, LayerSize);
                var buffer = new byte[1 << 20];
                int n;
                while ((n = stream.Read(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                }

                var digest = Digest.Parse("sha256:" + Convert.ToHexStringLower(hash.GetCurrentHash()));
                _layers[digest] = (seed, LayerSize);
                descriptors.Add($$"""{"mediaType":"{{MediaTypes.OciLayer}}","digest":"{{digest}}","size":{{LayerSize}}}""");
            }

            _config = Encoding.UTF8.GetBytes("""{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}""");
            _manifest = Encoding.UTF8.GetBytes($$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciManifest}}","config":{"mediaType":"{{MediaTypes.OciConfig}}","digest":"{{Digest.Sha256(_config)}}","size":{{_config.Length}}},"layers":[{{string.Join(",", descriptors)}}]}""");
            Root = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256(_manifest), Size = _manifest.Length };
        }

        public Descriptor Root { get; }

        public ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) => ValueTask.FromResult(Root);

        public ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken) =>
            ValueTask.FromResult<ReadOnlyMemory<byte>>(_manifest);

        public ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken) =>
            ValueTask.FromResult<Stream>(_layers.TryGetValue(blob.Digest, out var layer) ? new Generated(layer.Seed, layer.Size) : new MemoryStream(_config));

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>splitmix64 of the 8-byte block index: any block can be produced without the ones before.</summary>
    private sealed class Generated(long seed, long size) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => size;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, size - _position);
            Span<byte> block = stackalloc byte[8];
            for (var i = 0; i < n;)
            {
                var at = _position + i;
                var z = (ulong)(seed << 40) + (ulong)(at / 8) + 0x9E3779B97F4A7C15UL;
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                BinaryPrimitives.WriteUInt64LittleEndian(block, z ^ (z >> 31));
                var take = (int)Math.Min(8 - (at % 8), n - i);
                block.Slice((int)(at % 8), take).CopyTo(buffer[i..]);
                i += take;
            }

            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task Saving_large_blobs_with_downloads_ahead_allocates_a_few_buffers_not_the_blobs()
    {
        var source = new GeneratedSource(layers: 4);
        Directory.CreateDirectory(_temp.File("out"));
        var path = _temp.File("out/big.tar");
        var before = GC.GetTotalAllocatedBytes(precise: true);
        await using (var target = ArchiveTarget.Create(path))
        {
            await ImageGraph.CopyAsync(source, target, source.Root, new CopyOptions { Parallelism = 4, Reference = "example.com/big:1" }, null, CancellationToken.None);
            await target.CompleteAsync(CancellationToken.None);
        }

        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.True(allocated < 32L << 20, $"saving 4 x {LayerSize >> 20} MiB allocated {allocated >> 20} MiB");
        Assert.True(new FileInfo(path).Length > 4 * LayerSize);
        Assert.Equal(["big.tar"], Directory.GetFileSystemEntries(_temp.File("out")).Select(Path.GetFileName));
    }
}

/// <summary>Tests that measure the process's allocations run alone.</summary>
[CollectionDefinition(nameof(AllocationMeasuringCollection), DisableParallelization = true)]
public sealed class AllocationMeasuringCollection;
