using System.Formats.Tar;
using System.Text;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

/// <summary>
/// The classic <c>docker save</c> layout: <c>manifest.json</c>, <c>&lt;id&gt;.json</c> config and uncompressed
/// <c>&lt;id&gt;/layer.tar</c> layers, a repeated layer stored as a symbolic link to the first copy.
/// </summary>
public sealed class DockerSaveFormatTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Docker_save_archive_gets_a_synthesised_manifest_over_its_uncompressed_layers()
    {
        var layerTar = new MemoryStream();
        using (var writer = new TarWriter(layerTar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "etc/hostname") { DataStream = new MemoryStream("box\n"u8.ToArray()) });
        }

        var layer = layerTar.ToArray();
        var diffId = Digest.Sha256(layer);
        var config = Encoding.UTF8.GetBytes($$$"""{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":["{{{diffId}}}","{{{diffId}}}"]}}""");
        var configDigest = Digest.Sha256(config);
        var path = _temp.File("docker-save.tar");
        await using (var file = File.Create(path))
        await using (var writer = new TarWriter(file, TarEntryFormat.Ustar))
        {
            await writer.WriteEntryAsync(new UstarTarEntry(TarEntryType.Directory, "aaa/"));
            await writer.WriteEntryAsync(new UstarTarEntry(TarEntryType.RegularFile, "aaa/layer.tar") { DataStream = new MemoryStream(layer) });
            await writer.WriteEntryAsync(new UstarTarEntry(TarEntryType.Directory, "bbb/"));
            await writer.WriteEntryAsync(new UstarTarEntry(TarEntryType.SymbolicLink, "bbb/layer.tar") { LinkName = "../aaa/layer.tar" });
            await writer.WriteEntryAsync(new UstarTarEntry(TarEntryType.RegularFile, $"{configDigest.Encoded}.json") { DataStream = new MemoryStream(config) });
            await writer.WriteEntryAsync(new UstarTarEntry(TarEntryType.RegularFile, "manifest.json")
            {
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes(
                    $$"""[{"Config":"{{configDigest.Encoded}}.json","RepoTags":["busybox:1.36","registry.local/box:1"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}]""")),
            });
        }

        await using var read = await ArchiveSource.OpenAsync(path, null, CancellationToken.None);
        Assert.Equal(ArchiveFormat.DockerArchive, read.Format);
        var root = await read.ResolveAsync("docker.io/library/busybox:1.36", CancellationToken.None);
        Assert.Equal(root.Digest, (await read.ResolveAsync("registry.local/box:1", CancellationToken.None)).Digest);
        var manifest = ManifestDocument.Parse((await read.ReadManifestAsync(root, CancellationToken.None)).Span, root.MediaType);
        Assert.Equal(MediaTypes.DockerManifest, manifest.MediaType);
        Assert.Equal(configDigest, manifest.Config!.Digest);
        Assert.All(manifest.Layers, l => Assert.Equal(diffId, l.Digest));
        Assert.Equal(2, manifest.Layers.Count);

        await using var copy = OciLayoutStore.Create(_temp.File("copy"));
        await ImageGraph.CopyAsync(read, copy, root, null, null, CancellationToken.None);
        Assert.Equal(layer, await File.ReadAllBytesAsync(copy.BlobPath(diffId)));

        var inventory = Assert.Single(await ArchiveInventory.ListAsync(read, read.Entries, CancellationToken.None), i => i.Name == "docker.io/library/busybox:1.36");
        Assert.Equal(["linux/arm64"], inventory.Platforms);
        Assert.Equal(root.Size + config.Length + layer.Length, inventory.Size);
    }
}
