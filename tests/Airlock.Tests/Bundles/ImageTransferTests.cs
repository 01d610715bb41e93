using System.Collections;
using System.Text.Json;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Bundles.Transfer;
using Airlock.Cli.Hosting;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

public sealed class ImageTransferTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("docker://docker.io/library/busybox:1.36", ImageTransport.Docker, null, "docker.io/library/busybox:1.36")]
    [InlineData("oci:/tmp/layout:app", ImageTransport.OciLayout, "/tmp/layout", "app")]
    [InlineData("oci:/tmp/layout", ImageTransport.OciLayout, "/tmp/layout", null)]
    [InlineData("oci-archive:/tmp/a.tar:1.0", ImageTransport.OciArchive, "/tmp/a.tar", "1.0")]
    [InlineData("docker-archive:/tmp/a.tar:registry.local:5000/app:1", ImageTransport.DockerArchive, "/tmp/a.tar", "registry.local:5000/app:1")]
    public void Locations_parse_like_skopeo_transports(string value, ImageTransport transport, string? path, string? reference)
    {
        var location = ImageLocation.Parse(value);
        Assert.Equal(new ImageLocation(transport, path, reference), location);
        Assert.Equal(value, location.ToString());
    }

    [Fact]
    public void A_location_without_a_known_transport_is_refused()
    {
        var error = Assert.Throws<FormatException>(() => ImageLocation.Parse("ftp:/x"));
        Assert.Contains("docker://", error.Message, StringComparison.Ordinal);
        Assert.Equal(ImageTransport.Docker, ImageLocation.ParseOrRegistry("busybox:1.36").Transport);
    }

    [Theory]
    [InlineData("docker.io/rancher/mirrored-pause:3.6", "registry.local:5000", "registry.local:5000/rancher/mirrored-pause:3.6")]
    [InlineData("busybox:1.36", "registry.local:5000/mirror", "registry.local:5000/mirror/library/busybox:1.36")]
    [InlineData("quay.io/org/app:2", "registry.local", "registry.local/org/app:2")]
    public void Load_replaces_the_registry_host_and_keeps_the_repository_path(string image, string destination, string expected) =>
        Assert.Equal(expected, LoadNaming.Rename(ImageReference.Parse(image), destination, []).ToString());

    [Fact]
    public void Load_rewrites_apply_first_at_path_boundaries()
    {
        var rules = LoadNaming.ParseRewrites(["docker.io/library=registry.local/hub", "docker.io/ran=wrong.local/x"]);
        Assert.Equal("registry.local/hub/busybox:1.36", LoadNaming.Rename(ImageReference.Parse("busybox:1.36"), "other.local", rules).ToString());
        Assert.Equal("other.local/rancher/pause:3.6", LoadNaming.Rename(ImageReference.Parse("rancher/pause:3.6"), "other.local", rules).ToString());
        Assert.Throws<FormatException>(() => LoadNaming.ParseRewrites(["no-equals-sign"]));
    }

    /// <summary>Stands in for the registry client: each repository is an OCI layout under one folder.</summary>
    private RegistryConnector FolderRegistry() => new(
        reference => OciLayoutStore.Open(_temp.File("registry/" + reference.Name.Replace('/', '_'))),
        reference => new TaggingTarget(OciLayoutStore.Create(_temp.File("registry/" + reference.Name.Replace('/', '_')))));

    // Registry targets receive the bare tag; the folder registry records what it was given.
    private sealed class TaggingTarget(OciLayoutStore inner) : IImageTarget
    {
        public ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken) => inner.HasBlobAsync(blob, cancellationToken);

        public ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken) => inner.WriteBlobAsync(blob, content, cancellationToken);

        public ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken) => inner.HasManifestAsync(manifest, cancellationToken);

        public ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken) =>
            inner.WriteManifestAsync(manifest, content, reference, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private async Task<(Descriptor Index, Descriptor[] Images)> SourceLayoutAsync()
    {
        await using var layout = OciLayoutStore.Create(_temp.File("layout"));
        var shared = TestImages.MakeLayer(40);
        Descriptor[] images =
        [
            await TestImages.AddImageAsync(layout, TestImages.Amd64, [shared, TestImages.MakeLayer(41)]),
            await TestImages.AddImageAsync(layout, TestImages.Arm64, [shared, TestImages.MakeLayer(42)]),
        ];
        var index = await TestImages.AddIndexAsync(layout, images, "pause");
        return (index, images);
    }

    [Fact]
    public async Task Save_then_load_pushes_every_image_renamed_into_the_registry()
    {
        var (index, _) = await SourceLayoutAsync();
        var archive = _temp.File("bundle.tar.zst");
        var transfer = new ImageTransfer(FolderRegistry());
        await transfer.CopyAsync(ImageLocation.Parse($"oci:{_temp.File("layout")}:pause"),
            ImageLocation.Parse($"docker-archive:{archive}:docker.io/rancher/mirrored-pause:3.6"), new TransferOptions(), null, CancellationToken.None);
        var loaded = await transfer.LoadAsync([archive], "registry.local:5000", [], new TransferOptions(), null, CancellationToken.None);
        var result = Assert.Single(loaded);
        Assert.Equal("registry.local:5000/rancher/mirrored-pause:3.6", result.Destination);
        Assert.Equal(index.Digest, result.Root.Digest);
        await using var pushed = OciLayoutStore.Open(_temp.File("registry/registry.local:5000_rancher_mirrored-pause"));
        Assert.Equal(index.Digest, (await pushed.ResolveAsync("3.6", CancellationToken.None)).Digest);
    }

    [Fact]
    public async Task Registry_locations_without_a_registry_client_say_so()
    {
        var transfer = new ImageTransfer(null);
        var error = await Assert.ThrowsAsync<NotSupportedException>(() => transfer.SaveAsync(["busybox:1.36"], _temp.File("x.tar"), ArchiveFormat.DockerArchive,
            null, new TransferOptions(), null, CancellationToken.None));
        Assert.Contains("docker://", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.File("x.tar")));
    }

    [Fact]
    public async Task Export_writes_one_platform_under_the_given_name()
    {
        var (_, images) = await SourceLayoutAsync();
        var archive = _temp.File("export.tar");
        var result = await new ImageTransfer(null).ExportAsync($"oci:{_temp.File("layout")}:pause", archive, TestImages.Arm64,
            "registry.local/pause:3.6", null, new TransferOptions(), null, CancellationToken.None);
        Assert.Equal(images[1].Digest, result.Root.Digest);
        await using var read = await ArchiveSource.OpenAsync(archive, null, CancellationToken.None);
        var entry = Assert.Single(read.Entries);
        Assert.Equal("registry.local/pause:3.6", OciLayoutStore.NameOf(entry));
        Assert.Equal(images[1].Digest, entry.Digest);
        var inventory = await ArchiveInventory.ListAsync(read, read.Entries, CancellationToken.None);
        Assert.Equal(["linux/arm64"], Assert.Single(inventory).Platforms);
    }

    [Fact]
    public async Task Export_of_a_single_image_for_another_platform_is_refused()
    {
        await using (var layout = OciLayoutStore.Create(_temp.File("single")))
        {
            await TestImages.AddImageAsync(layout, TestImages.Amd64, [TestImages.MakeLayer(45)], "app");
        }

        var error = await Assert.ThrowsAsync<ImageNotFoundException>(() => new ImageTransfer(null).ExportAsync($"oci:{_temp.File("single")}:app",
            _temp.File("x.tar"), TestImages.Arm64, "registry.local/app:1", null, new TransferOptions(), null, CancellationToken.None));
        Assert.Contains("linux/amd64, not linux/arm64", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.File("x.tar")));
    }

    [Fact]
    public async Task Cli_save_list_archive_and_images_list_work_end_to_end()
    {
        var (index, images) = await SourceLayoutAsync();
        var archive = _temp.File("cli.tar.gz");
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(["images", "save", "-o", archive, $"oci:{_temp.File("layout")}:pause"], new Hashtable(), output, error);
        Assert.True(code == 0, error.ToString());
        Assert.Contains($"({index.Digest})", output.ToString(), StringComparison.Ordinal);
        // Progress goes to stderr, so stdout holds only what the command produced.
        Assert.Contains("Copying blob", error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Copying blob", output.ToString(), StringComparison.Ordinal);

        output = new StringWriter();
        code = await AirlockCli.RunAsync(["images", "list", "--archive", archive, "--output", "json"], new Hashtable(), output, error);
        Assert.True(code == 0, error.ToString());
        var row = Assert.Single(JsonDocument.Parse(output.ToString()).RootElement.EnumerateArray());
        Assert.Equal(index.Digest.ToString(), row.GetProperty("digest").GetString());
        Assert.Equal(["linux/amd64", "linux/arm64"], row.GetProperty("platforms").EnumerateArray().Select(p => p.GetString()));

        File.WriteAllText(_temp.File("pod.yaml"), "kind: Pod\nspec: { containers: [{ image: b:1 }, { image: a:1 }] }\n");
        output = new StringWriter();
        code = await AirlockCli.RunAsync(["images", "list", _temp.File("pod.yaml")], new Hashtable(), output, error);
        Assert.True(code == 0, error.ToString());
        Assert.Equal($"a:1{Environment.NewLine}b:1{Environment.NewLine}", output.ToString());
    }

    [Fact]
    public async Task Cli_reports_a_hostile_archive_with_file_and_entry_and_exits_1()
    {
        var path = _temp.File("evil.tar");
        await using (var file = File.Create(path))
        await using (var writer = new System.Formats.Tar.TarWriter(file))
        {
            await writer.WriteEntryAsync(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "../escape") { DataStream = new MemoryStream([1]) });
        }

        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(["images", "list", "--archive", path], new Hashtable(), new StringWriter(), error);
        Assert.Equal(1, code);
        Assert.Contains(path, error.ToString(), StringComparison.Ordinal);
        Assert.Contains("../escape", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_bad_platform_is_a_usage_error()
    {
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(["images", "copy", "--platform", "linux", "oci:/x:a", "oci:/y:b"], new Hashtable(), new StringWriter(), error);
        Assert.Equal(2, code);
        Assert.Contains("os/arch", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_all_platforms_overrides_a_platform_list_from_the_environment()
    {
        var layout = OciLayoutStore.Create(_temp.File("multi"));
        Descriptor index;
        await using (layout)
        {
            var amd64 = await TestImages.AddImageAsync(layout, TestImages.Amd64, [TestImages.MakeLayer(1)]);
            var arm64 = await TestImages.AddImageAsync(layout, TestImages.Arm64, [TestImages.MakeLayer(2)]);
            index = await TestImages.AddIndexAsync(layout, [amd64, arm64], "multi");
        }

        var environment = new Hashtable { ["AIRLOCK_PLATFORM"] = "linux/arm64" };
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(["images", "copy", "--quiet", $"oci:{_temp.File("multi")}:multi", $"oci:{_temp.File("one")}:x"], environment, new StringWriter(), error);
        Assert.True(code == 0, error.ToString());
        Assert.Equal(MediaTypes.OciManifest, Assert.Single(OciLayoutStore.Open(_temp.File("one")).Entries).MediaType);

        code = await AirlockCli.RunAsync(["images", "copy", "--quiet", "--all-platforms", $"oci:{_temp.File("multi")}:multi", $"oci:{_temp.File("all")}:x"],
            environment, new StringWriter(), error);
        Assert.True(code == 0, error.ToString());
        Assert.Equal(index.Digest, Assert.Single(OciLayoutStore.Open(_temp.File("all")).Entries).Digest);
    }

    /// <summary>Blobs stream straight into the archive; one that is not its digest fails the save and leaves neither the archive nor a partial file.</summary>
    [Fact]
    public async Task Save_of_a_blob_that_does_not_match_its_digest_leaves_no_archive_and_no_partial_file()
    {
        var layout = OciLayoutStore.Create(_temp.File("bad"));
        Descriptor image;
        await using (layout)
        {
            image = await TestImages.AddImageAsync(layout, TestImages.Amd64, [TestImages.MakeLayer(3, 200_000)], "example.com/app:1");
        }

        var layer = ManifestDocument.Parse((await layout.ReadManifestAsync(image, CancellationToken.None)).Span, image.MediaType).Layers[0];
        var blob = layout.BlobPath(layer.Digest);
        var bytes = File.ReadAllBytes(blob);
        bytes[^10] ^= 0xff;
        File.WriteAllBytes(blob, bytes);
        Directory.CreateDirectory(_temp.File("out"));

        var archive = _temp.File("out/app.tar");
        await Assert.ThrowsAsync<DigestMismatchException>(() => new ImageTransfer(null).SaveAsync([$"oci:{_temp.File("bad")}:example.com/app:1"], archive,
            ArchiveFormat.DockerArchive, null, new TransferOptions(), null, CancellationToken.None));
        Assert.Empty(Directory.GetFileSystemEntries(_temp.File("out")));
    }

    /// <summary>The archive checks what it is given itself, whatever the source: wrong content spoils it, and completing it then fails.</summary>
    [Fact]
    public async Task Archive_target_refuses_content_that_is_not_the_descriptor_and_cannot_then_be_completed()
    {
        Directory.CreateDirectory(_temp.File("spoiled"));
        var path = _temp.File("spoiled/a.tar.zst");
        var content = new byte[100_000];
        var descriptor = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256(content), Size = content.Length };
        await using (var target = ArchiveTarget.Create(path))
        {
            await target.WriteBlobAsync(descriptor, new MemoryStream(content), CancellationToken.None);
            content[5] = 1;
            var other = descriptor with { Digest = Digest.Sha256("other"u8) };
            await Assert.ThrowsAsync<DigestMismatchException>(async () => await target.WriteBlobAsync(other, new MemoryStream(content), CancellationToken.None));
            await Assert.ThrowsAnyAsync<Exception>(async () => await target.WriteBlobAsync(other with { Size = 3 }, new MemoryStream([1, 2]), CancellationToken.None));
            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => target.CompleteAsync(CancellationToken.None));
            Assert.Contains("cannot be completed", error.Message, StringComparison.Ordinal);
        }

        Assert.Empty(Directory.GetFileSystemEntries(_temp.File("spoiled")));
    }
}
