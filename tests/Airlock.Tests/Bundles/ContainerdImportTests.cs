using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Bundles.Transfer;
using Airlock.Oci;
using Airlock.Tests.Node.Containerd;

namespace Airlock.Tests.Bundles;

/// <summary>
/// What the K3s images directory does with an archive — <c>ctr -n k8s.io images import</c> — against a real
/// containerd the test starts with its own root, state and socket and stops by PID.
/// </summary>
public sealed class ContainerdImportTests : IAsyncLifetime
{
    private readonly TempDirectory _temp = new();
    private readonly ContainerdProcess _containerd = new();

    private string Socket => _containerd.Address;

    public Task InitializeAsync() => _containerd.InitializeAsync();

    public async Task DisposeAsync()
    {
        await _containerd.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task Ctr_import_names_every_image_with_airlocks_digests()
    {
        var layout = OciLayoutStore.Create(_temp.File("layout"));
        Descriptor index;
        Descriptor single;
        await using (layout)
        {
            var shared = TestImages.MakeLayer(60);
            var amd = await TestImages.AddImageAsync(layout, TestImages.Amd64, [shared, TestImages.MakeLayer(61)]);
            var arm = await TestImages.AddImageAsync(layout, TestImages.Arm64, [shared, TestImages.MakeLayer(62)]);
            index = await TestImages.AddIndexAsync(layout, [amd, arm], "docker.io/rancher/mirrored-pause:3.6");
            single = await TestImages.AddImageAsync(layout, TestImages.Amd64, [shared], "registry.local:5000/app/web:1.0", MediaTypes.DockerManifest);
            var archive = _temp.File("images.tar.zst");
            await using var target = ArchiveTarget.Create(archive);
            foreach (var entry in layout.Entries)
            {
                await ImageGraph.CopyAsync(layout, target, entry, new CopyOptions { Reference = OciLayoutStore.NameOf(entry) }, null, CancellationToken.None);
            }

            await target.CompleteAsync(CancellationToken.None);

            // ctr 1.6 reads plain tar only ("invalid tar header" for .tar.zst); the images directory decompresses first, as K3s does.
            var plain = _temp.File("images.tar");
            await using (var source = File.OpenRead(archive))
            await using (var expanded = ArchiveCodecs.OpenRead(source, ArchiveCompression.Zstd))
            await using (var output = File.Create(plain))
            {
                await expanded.CopyToAsync(output);
            }

            await SkopeoInteropTests.RunAsync("ctr", "-a", Socket, "-n", "k8s.io", "images", "import", "--all-platforms", "--no-unpack", plain);
        }

        // export: one image, one platform, imported under exactly the name given.
        var exported = _temp.File("exported.tar");
        var result = await new ImageTransfer(null).ExportAsync($"oci:{_temp.File("layout")}:docker.io/rancher/mirrored-pause:3.6", exported,
            Platform.Host, "registry.local/exported:1", null, new TransferOptions(), null, CancellationToken.None);
        await SkopeoInteropTests.RunAsync("ctr", "-a", Socket, "-n", "k8s.io", "images", "import", "--no-unpack", exported);

        var listing = await SkopeoInteropTests.RunAsync("ctr", "-a", Socket, "-n", "k8s.io", "images", "ls");
        Assert.Contains(listing.Split('\n'), l => l.StartsWith("registry.local/exported:1 ", StringComparison.Ordinal) && l.Contains(result.Root.Digest.ToString(), StringComparison.Ordinal));
        Assert.Equal(3, listing.Split('\n').Count(l => l.Contains("sha256:", StringComparison.Ordinal)));
        Assert.Contains(listing.Split('\n'), l => l.StartsWith("docker.io/rancher/mirrored-pause:3.6 ", StringComparison.Ordinal) && l.Contains(index.Digest.ToString(), StringComparison.Ordinal));
        Assert.Contains(listing.Split('\n'), l => l.StartsWith("registry.local:5000/app/web:1.0 ", StringComparison.Ordinal) && l.Contains(single.Digest.ToString(), StringComparison.Ordinal));
    }
}
