using System.Text;
using Airlock.Content;
using Airlock.Node.Containerd;
using Airlock.Oci;

namespace Airlock.Tests.Node.Containerd;

/// <summary>Imports built-here images into a real containerd and checks them with containerd's own ctr.</summary>
public sealed class ContainerdImageTargetTests(ContainerdProcess daemon) : IClassFixture<ContainerdProcess>
{
    private static readonly TestImage Image = TestImage.Build();

    [Fact]
    public async Task Import_creates_a_pinned_image_record_that_ctr_lists()
    {
        const string name = "registry.airlock.test/demo/hello:1";
        await using var client = daemon.Connect();

        await ImportAsync(client, name);

        var record = await client.Images.GetAsync(name, CancellationToken.None);
        Assert.NotNull(record);
        Assert.Equal(Image.Index.Digest, record.Target.Digest);
        Assert.Equal(MediaTypes.OciIndex, record.Target.MediaType);
        Assert.Equal("pinned", record.Labels["io.cattle.k3s.pinned"]);
        Assert.Equal("pinned", record.Labels["io.cri-containerd.pinned"]);
        var (exit, listed) = await daemon.CtrAsync(["images", "ls"]);
        Assert.Equal(0, exit);
        var line = Assert.Single(listed.Split('\n'), l => l.StartsWith(name + " ", StringComparison.Ordinal));
        Assert.Contains(Image.Index.Digest.ToString(), line, StringComparison.Ordinal);
        Assert.Contains("io.cattle.k3s.pinned=pinned", line, StringComparison.Ordinal);
        Assert.Contains("linux/amd64,linux/arm64/v8", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_short_reference_is_stored_under_its_normalised_name_as_containerd_would()
    {
        await using var client = daemon.Connect();

        await ImportAsync(client, "airlock-short");

        Assert.NotNull(await client.Images.GetAsync("docker.io/library/airlock-short:latest", CancellationToken.None));
        Assert.Null(await client.Images.GetAsync("airlock-short", CancellationToken.None));
    }

    [Fact]
    public async Task Manifests_carry_containerd_gc_labels_and_all_content_the_distribution_source()
    {
        const string name = "registry.airlock.test/demo/labels:1";
        await using var client = daemon.Connect();

        await ImportAsync(client, name);

        var index = await client.Content.InfoAsync(Image.Index.Digest, CancellationToken.None);
        Assert.Equal(Image.AmdManifest.Digest.ToString(), index!.Labels["containerd.io/gc.ref.content.m.0"]);
        Assert.Equal(Image.ArmManifest.Digest.ToString(), index.Labels["containerd.io/gc.ref.content.m.1"]);
        var manifest = await client.Content.InfoAsync(Image.AmdManifest.Digest, CancellationToken.None);
        Assert.Equal(Image.AmdConfig.Digest.ToString(), manifest!.Labels["containerd.io/gc.ref.content.config"]);
        Assert.Equal(Image.AmdLayers[0].Digest.ToString(), manifest.Labels["containerd.io/gc.ref.content.l.0"]);
        Assert.Equal(Image.AmdLayers[1].Digest.ToString(), manifest.Labels["containerd.io/gc.ref.content.l.1"]);

        var (exit, content) = await daemon.CtrAsync(["content", "ls"]);
        Assert.Equal(0, exit);
        foreach (var digest in new[] { Image.Index.Digest, Image.AmdManifest.Digest, Image.AmdConfig.Digest, Image.AmdLayers[0].Digest, Image.ArmManifest.Digest })
        {
            // Other tests import the same content under other repositories: the label lists them all.
            var line = Assert.Single(content.Split('\n'), l => l.StartsWith(digest.ToString(), StringComparison.Ordinal));
            var repositories = (await client.Content.InfoAsync(digest, CancellationToken.None))!.Labels["containerd.io/distribution.source.registry.airlock.test"].Split(',');
            Assert.Contains("demo/labels", repositories);
            Assert.Equal(repositories.Order(StringComparer.Ordinal), repositories);
            Assert.Contains("containerd.io/distribution.source.registry.airlock.test=" + string.Join(',', repositories), line, StringComparison.Ordinal);
        }

        Assert.Contains("containerd.io/gc.ref.content.m.0=" + Image.AmdManifest.Digest, content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_host_platform_is_unpacked_so_ctr_runs_the_image_and_sees_both_layers()
    {
        const string name = "registry.airlock.test/demo/run:1";
        await using var client = daemon.Connect();

        await ImportAsync(client, name);

        var config = await client.Content.InfoAsync(Image.AmdConfig.Digest, CancellationToken.None);
        var top = config!.Labels["containerd.io/gc.ref.snapshot.overlayfs"];
        Assert.NotNull(await client.Snapshots.StatAsync("overlayfs", top, CancellationToken.None));
        Assert.NotNull(await client.Snapshots.StatAsync("overlayfs", Image.AmdDiffIds[0].ToString(), CancellationToken.None));
        var layer = await client.Content.InfoAsync(Image.AmdLayers[0].Digest, CancellationToken.None);
        Assert.Equal(Image.AmdDiffIds[0].ToString(), layer!.Labels["containerd.io/uncompressed"]);

        var (exit, output) = await daemon.CtrAsync(["images", "check", "name==" + name]);
        Assert.True(exit == 0, output);
        var check = Assert.Single(output.Split('\n'), l => l.StartsWith(name + " ", StringComparison.Ordinal));
        Assert.Matches(@" complete \((\d+)/\1\) ", check);
        Assert.EndsWith("true", check.TrimEnd(), StringComparison.Ordinal);

        (exit, output) = await daemon.CtrAsync(["run", "--rm", name, "airlock-run-1"]);
        Assert.True(exit == 0, output);
        Assert.Equal(TestImage.Greeting, output.Trim());
        (exit, output) = await daemon.CtrAsync(["run", "--rm", name, "airlock-run-2", "/bin/cat", "/etc/airlock"]);
        Assert.True(exit == 0, output);
        Assert.Equal(TestImage.SecondLayerText, output.Trim());
    }

    [Fact]
    public async Task A_docker_schema_2_image_gets_the_same_labels_and_runs()
    {
        const string name = "registry.airlock.test/demo/docker:1";
        var image = TestImage.Build("from a docker image", docker: true);
        await using var client = daemon.Connect();

        await using (var target = new ContainerdImageTarget(client))
        {
            await image.CopyToAsync(target, name, CancellationToken.None);
        }

        var manifest = await client.Content.InfoAsync(image.AmdManifest.Digest, CancellationToken.None);
        Assert.Equal(image.AmdConfig.Digest.ToString(), manifest!.Labels["containerd.io/gc.ref.content.config"]);
        Assert.Equal(image.AmdLayers[1].Digest.ToString(), manifest.Labels["containerd.io/gc.ref.content.l.1"]);
        Assert.Equal(image.AmdManifest.Digest.ToString(), (await client.Content.InfoAsync(image.Index.Digest, CancellationToken.None))!.Labels["containerd.io/gc.ref.content.m.0"]);
        var (exit, output) = await daemon.CtrAsync(["run", "--rm", name, "airlock-docker-1", "/bin/cat", "/etc/airlock"]);
        Assert.True(exit == 0, output);
        Assert.Equal("from a docker image", output.Trim());
    }

    [Fact]
    public async Task The_snapshotter_is_configurable_and_native_unpacks_a_runnable_image_too()
    {
        const string name = "registry.airlock.test/demo/native:1";
        await using var client = daemon.Connect();

        await using (var target = new ContainerdImageTarget(client, new ContainerdImportOptions { Snapshotter = "native" }))
        {
            await Image.CopyToAsync(target, name, CancellationToken.None);
        }

        var config = await client.Content.InfoAsync(Image.AmdConfig.Digest, CancellationToken.None);
        Assert.NotNull(await client.Snapshots.StatAsync("native", config!.Labels["containerd.io/gc.ref.snapshot.native"], CancellationToken.None));
        var (exit, output) = await daemon.CtrAsync(["run", "--snapshotter", "native", "--rm", name, "airlock-native-1"]);
        Assert.True(exit == 0, output);
        Assert.Equal(TestImage.Greeting, output.Trim());
    }

    [Fact]
    public async Task Garbage_collection_keeps_everything_the_image_record_reaches_and_takes_it_once_the_record_goes()
    {
        const string name = "registry.airlock.test/demo/gc:1";
        var image = TestImage.Build("only in the gc test");
        await using var client = daemon.Connect();
        await using (var target = new ContainerdImageTarget(client))
        {
            await image.CopyToAsync(target, name, CancellationToken.None);
        }

        var unique = new[] { image.Index, image.AmdManifest, image.AmdConfig, image.AmdLayers[1], image.ArmManifest };
        var top = (await client.Content.InfoAsync(image.AmdConfig.Digest, CancellationToken.None))!.Labels["containerd.io/gc.ref.snapshot.overlayfs"];

        await CollectGarbageAsync(client);
        foreach (var descriptor in unique)
        {
            Assert.NotNull(await client.Content.InfoAsync(descriptor.Digest, CancellationToken.None));
        }

        Assert.NotNull(await client.Snapshots.StatAsync("overlayfs", top, CancellationToken.None));

        Assert.Equal(0, (await daemon.CtrAsync(["images", "rm", "--sync", name])).ExitCode);
        foreach (var descriptor in unique)
        {
            Assert.Null(await client.Content.InfoAsync(descriptor.Digest, CancellationToken.None));
        }
    }

    [Fact]
    public async Task Blobs_written_before_their_image_record_survive_a_collection_until_the_target_is_disposed()
    {
        await using var client = daemon.Connect();
        var bytes = new byte[64 * 1024];
        Random.Shared.NextBytes(bytes);
        var blob = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256(bytes), Size = bytes.Length };

        var target = new ContainerdImageTarget(client);
        await target.WriteBlobAsync(blob, new MemoryStream(bytes), CancellationToken.None);
        await CollectGarbageAsync(client);
        Assert.NotNull(await client.Content.InfoAsync(blob.Digest, CancellationToken.None));

        await target.DisposeAsync();
        await CollectGarbageAsync(client);
        Assert.Null(await client.Content.InfoAsync(blob.Digest, CancellationToken.None));
    }

    [Fact]
    public async Task Importing_twice_is_idempotent_and_leaves_no_lease()
    {
        const string name = "registry.airlock.test/demo/twice:1";
        await using var client = daemon.Connect();

        await ImportAsync(client, name);
        var first = await daemon.CtrAsync(["content", "ls", "-q"]);
        await ImportAsync(client, name);

        var (_, images) = await daemon.CtrAsync(["images", "ls", "-q"]);
        Assert.Single(images.Split('\n'), l => l == name);
        Assert.Equal(first, await daemon.CtrAsync(["content", "ls", "-q"]));
        Assert.Equal(Image.Index.Digest, (await client.Images.GetAsync(name, CancellationToken.None))!.Target.Digest);
        Assert.Empty(await client.Leases.ListAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_blob_whose_content_does_not_match_its_digest_is_refused_and_leaves_nothing()
    {
        await using var client = daemon.Connect();
        var layer = Image.AmdLayers[0];
        var tampered = Image.BytesOf(layer).ToArray();
        tampered[^1] ^= 0xff;

        await using (var target = new ContainerdImageTarget(client))
        {
            var error = await Assert.ThrowsAsync<DigestMismatchException>(
                async () => await target.WriteBlobAsync(layer with { Digest = Digest.Sha256(Encoding.UTF8.GetBytes("not this")) }, new MemoryStream(tampered), CancellationToken.None));
            Assert.Contains("does not match", error.Message, StringComparison.Ordinal);
        }

        Assert.Null(await client.Content.InfoAsync(Digest.Sha256(Encoding.UTF8.GetBytes("not this")), CancellationToken.None));
        Assert.Null(await client.Content.InfoAsync(Digest.Sha256(tampered), CancellationToken.None));
        Assert.Empty(await client.Content.ListStatusesAsync(null, CancellationToken.None));
    }

    [Fact]
    public async Task An_index_whose_bytes_do_not_match_creates_no_image_record()
    {
        const string name = "registry.airlock.test/demo/tampered:1";
        await using var client = daemon.Connect();
        var wrong = Image.Index with { Digest = Digest.Sha256(Encoding.UTF8.GetBytes("{}")) };

        await using (var target = new ContainerdImageTarget(client))
        {
            await Assert.ThrowsAsync<DigestMismatchException>(
                async () => await target.WriteManifestAsync(wrong, await Image.ReadManifestAsync(Image.Index, CancellationToken.None), name, CancellationToken.None));
        }

        Assert.Null(await client.Images.GetAsync(name, CancellationToken.None));
        Assert.Null(await client.Content.InfoAsync(wrong.Digest, CancellationToken.None));
    }

    [Fact]
    public async Task Cancelling_mid_write_aborts_the_ingest()
    {
        await using var client = daemon.Connect();
        using var cancellation = new CancellationTokenSource();
        var big = new byte[8 * 1024 * 1024];
        Random.Shared.NextBytes(big);
        var blob = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256(big), Size = big.Length };

        await using (var target = new ContainerdImageTarget(client))
        {
            var content = new CancelAfterFirstReadStream(new MemoryStream(big), cancellation);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await target.WriteBlobAsync(blob, content, cancellation.Token));
            Assert.True(content.Reads > 1, "the write was cancelled before any data reached containerd");
        }

        Assert.Empty(await client.Content.ListStatusesAsync(null, CancellationToken.None));
        Assert.Null(await client.Content.InfoAsync(blob.Digest, CancellationToken.None));
    }

    [Fact]
    public async Task Two_imports_writing_the_same_blob_at_once_both_succeed()
    {
        await using var client = daemon.Connect();
        var bytes = new byte[3 * 1024 * 1024];
        Random.Shared.NextBytes(bytes);
        var blob = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256(bytes), Size = bytes.Length };
        await using var first = new ContainerdImageTarget(client);

        // The first import writes a chunk and then holds its ingest (containerd locks the ref) until released;
        // the second is released only once it met that lock, so the two overlap on any machine.
        var firstChunkRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = first.WriteBlobAsync(blob, new SlowStream(new MemoryStream(bytes), firstChunkRead, release.Task), CancellationToken.None).AsTask();
        await firstChunkRead.Task.WaitAsync(TimeSpan.FromSeconds(60));
        var lockedRetries = new LockedRetryObserver();
        await using var secondClient = ContainerdClient.Connect(daemon.Address, options: new ContainerdClientOptions { TimeProvider = lockedRetries });
        await using var second = new ContainerdImageTarget(secondClient);
        var other = second.WriteBlobAsync(blob, new MemoryStream(bytes), CancellationToken.None).AsTask();
        await lockedRetries.Waiting.WaitAsync(TimeSpan.FromSeconds(60));
        release.SetResult();
        await other;
        await slow;

        Assert.Equal(bytes.Length, (await client.Content.InfoAsync(blob.Digest, CancellationToken.None))!.Size);
        Assert.Empty(await client.Content.ListStatusesAsync(null, CancellationToken.None));
    }

    [Fact]
    public async Task A_malformed_reference_is_refused_before_anything_is_written()
    {
        await using var client = daemon.Connect();
        var manifest = Image.ArmManifest;

        await using (var target = new ContainerdImageTarget(client))
        {
            await Assert.ThrowsAsync<FormatException>(
                async () => await target.WriteManifestAsync(manifest, await Image.ReadManifestAsync(manifest, CancellationToken.None), "Bad Name::", CancellationToken.None));
        }

        var (_, images) = await daemon.CtrAsync(["images", "ls", "-q"]);
        Assert.DoesNotContain("Bad", images, StringComparison.Ordinal);
    }

    // containerd collects synchronously when an image is removed with --sync.
    private async Task CollectGarbageAsync(ContainerdClient client)
    {
        const string trigger = "registry.airlock.test/demo/gc-trigger:1";
        await client.Images.PutAsync(trigger, Image.Index, new Dictionary<string, string>(), CancellationToken.None);
        Assert.Equal(0, (await daemon.CtrAsync(["images", "rm", "--sync", trigger])).ExitCode);
    }

    private static async Task ImportAsync(ContainerdClient client, string name)
    {
        await using var target = new ContainerdImageTarget(client);
        await Image.CopyToAsync(target, name, CancellationToken.None);
    }

    /// <summary>Notes when the client waits to retry a write whose ingest another writer holds locked (its 200 ms retry delay).</summary>
    private sealed class LockedRetryObserver : TimeProvider
    {
        private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Waiting => _waiting.Task;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime == TimeSpan.FromMilliseconds(200))
            {
                _waiting.TrySetResult();
            }

            return System.CreateTimer(callback, state, dueTime, period);
        }
    }

    /// <summary>Hands out its first chunk, then holds the rest until released, so a second writer finds the ingest locked.</summary>
    private sealed class SlowStream(Stream inner, TaskCompletionSource firstRead, Task release) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => throw new NotSupportedException();
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (firstRead.Task.IsCompleted)
            {
                await release.WaitAsync(cancellationToken);
            }

            var read = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, 512 * 1024)], cancellationToken);
            firstRead.TrySetResult();
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Hands out data, and cancels the write once containerd has had a first chunk.</summary>
    private sealed class CancelAfterFirstReadStream(Stream inner, CancellationTokenSource cancellation) : Stream
    {
        public int Reads { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => throw new NotSupportedException();
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Reads++;
            if (inner.Position >= 1024 * 1024)
            {
                await cancellation.CancelAsync();
                cancellationToken.ThrowIfCancellationRequested();
            }

            return await inner.ReadAsync(buffer, cancellationToken);
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
