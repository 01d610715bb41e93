using System.Formats.Tar;
using System.Text.Json;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

public sealed class ArchiveRoundtripTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>A multi-arch index (two platforms sharing a base layer) and a single-platform image.</summary>
    private async Task<(OciLayoutStore Layout, Descriptor Index, Descriptor Single, TestImages.Layer Base)> SampleLayoutAsync()
    {
        var layout = OciLayoutStore.Create(_temp.File("source"));
        var baseLayer = TestImages.MakeLayer(1, 64 * 1024);
        var amd = await TestImages.AddImageAsync(layout, TestImages.Amd64, [baseLayer, TestImages.MakeLayer(2)]);
        var arm = await TestImages.AddImageAsync(layout, TestImages.Arm64, [baseLayer, TestImages.MakeLayer(3)]);
        var index = await TestImages.AddIndexAsync(layout, [amd, arm], "docker.io/rancher/mirrored-pause:3.6");
        var single = await TestImages.AddImageAsync(layout, TestImages.Amd64, [baseLayer, TestImages.MakeLayer(4)], "registry.example:5000/app/web:1.0",
            MediaTypes.DockerManifest);
        return (layout, index, single, baseLayer);
    }

    private static async Task SaveAsync(OciLayoutStore source, ArchiveTarget target)
    {
        foreach (var entry in source.Entries)
        {
            await ImageGraph.CopyAsync(source, target, entry, new CopyOptions { Reference = OciLayoutStore.NameOf(entry) }, null, CancellationToken.None);
        }

        await target.CompleteAsync(CancellationToken.None);
    }

    private static List<string> TarEntryNames(string path)
    {
        using var file = File.OpenRead(path);
        var head = new byte[512];
        var n = file.ReadAtLeast(head, 512, throwOnEndOfStream: false);
        file.Position = 0;
        using var expanded = ArchiveCodecs.OpenRead(file, ArchiveCodecs.Detect(head.AsSpan(0, n))!.Value);
        using var reader = new TarReader(expanded);
        var names = new List<string>();
        while (reader.GetNextEntry() is { } entry)
        {
            names.Add(entry.Name);
        }

        return names;
    }

    [Theory]
    [InlineData("images.tar", ArchiveFormat.DockerArchive)]
    [InlineData("images.tar.gz", ArchiveFormat.DockerArchive)]
    [InlineData("images.tgz", ArchiveFormat.OciLayout)]
    [InlineData("images.tar.zst", ArchiveFormat.DockerArchive)]
    [InlineData("images.tzst", ArchiveFormat.OciLayout)]
    [InlineData("images.tar.lz4", ArchiveFormat.DockerArchive)]
    [InlineData("images.tar.bz2", ArchiveFormat.DockerArchive)]
    [InlineData("images.tbz", ArchiveFormat.OciLayout)]
    public async Task Layout_to_archive_to_layout_keeps_every_digest_bit_for_bit(string fileName, ArchiveFormat format)
    {
        var (source, index, single, _) = await SampleLayoutAsync();
        await using (source)
        {
            var archivePath = _temp.File(fileName);
            await using (var archive = ArchiveTarget.Create(archivePath, format))
            {
                Assert.Equal(ArchiveCodecs.FromFileName(fileName), archive.Compression);
                await SaveAsync(source, archive);
            }

            await using var read = await ArchiveSource.OpenAsync(archivePath, new ArchiveLimits { SpoolDirectory = _temp.Path }, CancellationToken.None);
            Assert.Equal(ArchiveFormat.OciLayout, read.Format);
            Assert.Equal(ArchiveCodecs.FromFileName(fileName), read.Compression);
            await using var copy = OciLayoutStore.Create(_temp.File("copy"));
            foreach (var entry in read.Entries)
            {
                await ImageGraph.CopyAsync(read, copy, entry, new CopyOptions { Reference = OciLayoutStore.NameOf(entry) }, null, CancellationToken.None);
            }

            Assert.Equal(index.Digest, (await copy.ResolveAsync("docker.io/rancher/mirrored-pause:3.6", CancellationToken.None)).Digest);
            Assert.Equal(single.Digest, (await copy.ResolveAsync("registry.example:5000/app/web:1.0", CancellationToken.None)).Digest);
            var originalBlobs = Directory.GetFiles(Path.Combine(source.Root, "blobs", "sha256")).Select(Path.GetFileName).Order().ToList();
            var copiedBlobs = Directory.GetFiles(Path.Combine(copy.Root, "blobs", "sha256")).Select(Path.GetFileName).Order().ToList();
            Assert.Equal(originalBlobs, copiedBlobs);
            foreach (var blob in originalBlobs)
            {
                Assert.Equal(File.ReadAllBytes(Path.Combine(source.Root, "blobs", "sha256", blob!)), File.ReadAllBytes(Path.Combine(copy.Root, "blobs", "sha256", blob!)));
            }
        }
    }

    [Fact]
    public async Task Layers_shared_between_images_are_stored_once_in_the_archive()
    {
        var (source, _, _, baseLayer) = await SampleLayoutAsync();
        await using (source)
        {
            var archivePath = _temp.File("images.tar");
            await using (var archive = ArchiveTarget.Create(archivePath))
            {
                await SaveAsync(source, archive);
            }

            var names = TarEntryNames(archivePath);
            Assert.Single(names, n => n == $"blobs/sha256/{baseLayer.Descriptor.Digest.Encoded}");
            Assert.Equal(names.Count, names.Distinct().Count());
        }
    }

    [Fact]
    public async Task Docker_archive_has_manifest_json_pointing_at_blobs_for_every_name()
    {
        var (source, index, single, _) = await SampleLayoutAsync();
        await using (source)
        {
            var archivePath = _temp.File("images.tar");
            await using (var archive = ArchiveTarget.Create(archivePath))
            {
                await SaveAsync(source, archive);
            }

            using var file = File.OpenRead(archivePath);
            using var reader = new TarReader(file);
            JsonElement? manifest = null;
            var names = new HashSet<string>();
            while (reader.GetNextEntry(copyData: true) is { } entry)
            {
                names.Add(entry.Name);
                if (entry.Name == "manifest.json")
                {
                    manifest = JsonDocument.Parse(entry.DataStream!).RootElement.Clone();
                }
            }

            Assert.Contains("oci-layout", names);
            Assert.Contains("index.json", names);
            Assert.Contains("repositories", names);
            var images = manifest!.Value.EnumerateArray().ToList();
            Assert.Equal(2, images.Count);
            var tags = images.SelectMany(i => i.GetProperty("RepoTags").EnumerateArray().Select(t => t.GetString())).Order().ToList();
            Assert.Equal(["docker.io/rancher/mirrored-pause:3.6", "registry.example:5000/app/web:1.0"], tags);
            foreach (var image in images)
            {
                Assert.Contains(image.GetProperty("Config").GetString()!, names);
                Assert.All(image.GetProperty("Layers").EnumerateArray(), l => Assert.Contains(l.GetString()!, names));
                Assert.StartsWith("blobs/sha256/", image.GetProperty("Config").GetString(), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Compression_is_detected_from_content_not_from_the_file_name()
    {
        var (source, index, _, _) = await SampleLayoutAsync();
        await using (source)
        {
            var archivePath = _temp.File("misnamed.tar");
            await using (var archive = ArchiveTarget.Create(archivePath, ArchiveFormat.OciLayout, ArchiveCompression.Zstd))
            {
                await SaveAsync(source, archive);
            }

            await using var read = await ArchiveSource.OpenAsync(archivePath, null, CancellationToken.None);
            Assert.Equal(ArchiveCompression.Zstd, read.Compression);
            Assert.Equal(index.Digest, (await read.ResolveAsync("docker.io/rancher/mirrored-pause:3.6", CancellationToken.None)).Digest);
        }
    }

    [Fact]
    public async Task Disposing_an_archive_target_without_completing_leaves_no_file_and_no_staging()
    {
        var (source, index, _, _) = await SampleLayoutAsync();
        await using (source)
        {
            var archivePath = _temp.File("out.tar");
            await using (var archive = ArchiveTarget.Create(archivePath))
            {
                await ImageGraph.CopyAsync(source, archive, index, null, null, CancellationToken.None);
            }

            Assert.Equal(["source"], Directory.GetFileSystemEntries(_temp.Path).Select(Path.GetFileName));
        }
    }
}
