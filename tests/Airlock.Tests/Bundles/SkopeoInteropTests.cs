using System.Diagnostics;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

/// <summary>
/// Archives exchanged with the real skopeo (and podman): what they write Airlock reads with the digests
/// they report, and what Airlock writes they read.
/// </summary>
public sealed class SkopeoInteropTests : IDisposable
{
    private const string Name = "example.com/team/app:1.0";
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    internal static async Task<string> RunAsync(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        Assert.True(process.ExitCode == 0, $"{tool} {string.Join(' ', args)} exited {process.ExitCode}: {await stderr}");
        return await stdout;
    }

    private async Task<(OciLayoutStore Layout, Descriptor Image, Descriptor Config)> LayoutAsync()
    {
        var layout = OciLayoutStore.Create(_temp.File("layout"));
        var image = await TestImages.AddImageAsync(layout, TestImages.Amd64, [TestImages.MakeLayer(21), TestImages.MakeLayer(22, 20000)], "app");
        var document = ManifestDocument.Parse((await layout.ReadManifestAsync(image, CancellationToken.None)).Span, image.MediaType);
        return (layout, image, document.Config!);
    }

    [Fact]
    public async Task Skopeo_docker_archive_is_read_with_the_manifest_digest_skopeo_reports()
    {
        var (layout, _, config) = await LayoutAsync();
        await using var _ = layout;
        var archive = _temp.File("skopeo-docker.tar");
        await RunAsync("skopeo", "copy", "--quiet", $"oci:{layout.Root}:app", $"docker-archive:{archive}:{Name}");
        var skopeoManifest = await RunAsync("skopeo", "inspect", "--raw", $"docker-archive:{archive}");

        await using var read = await ArchiveSource.OpenAsync(archive, null, CancellationToken.None);
        Assert.Equal(ArchiveFormat.DockerArchive, read.Format);
        var root = await read.ResolveAsync(Name, CancellationToken.None);
        Assert.Equal(skopeoManifest.TrimEnd('\n'), System.Text.Encoding.UTF8.GetString((await read.ReadManifestAsync(root, CancellationToken.None)).Span));
        Assert.Equal(Digest.Sha256(System.Text.Encoding.UTF8.GetBytes(skopeoManifest.TrimEnd('\n'))), root.Digest);
        var document = ManifestDocument.Parse((await read.ReadManifestAsync(root, CancellationToken.None)).Span, root.MediaType);
        Assert.Equal(config.Digest, document.Config!.Digest);

        // The whole graph reads back verified, so it can be loaded anywhere.
        await using var copy = OciLayoutStore.Create(_temp.File("copy"));
        await ImageGraph.CopyAsync(read, copy, root, null, null, CancellationToken.None);
    }

    [Fact]
    public async Task Skopeo_oci_archive_is_read_with_the_original_digests()
    {
        var (layout, image, _) = await LayoutAsync();
        await using var _ = layout;
        var archive = _temp.File("skopeo-oci.tar");
        await RunAsync("skopeo", "copy", "--quiet", $"oci:{layout.Root}:app", $"oci-archive:{archive}:1.0");

        await using var read = await ArchiveSource.OpenAsync(archive, null, CancellationToken.None);
        Assert.Equal(ArchiveFormat.OciLayout, read.Format);
        Assert.Equal(image.Digest, (await read.ResolveAsync("1.0", CancellationToken.None)).Digest);
    }

    [Fact]
    public async Task Airlock_docker_archive_is_read_by_skopeo_with_the_same_digests()
    {
        var (layout, image, config) = await LayoutAsync();
        await using var _ = layout;
        var archive = _temp.File("airlock.tar");
        await using (var target = ArchiveTarget.Create(archive))
        {
            await ImageGraph.CopyAsync(layout, target, image, new CopyOptions { Reference = Name }, null, CancellationToken.None);
            await target.CompleteAsync(CancellationToken.None);
        }

        var inspect = await RunAsync("skopeo", "inspect", $"docker-archive:{archive}");
        Assert.Contains("\"Architecture\": \"amd64\"", inspect, StringComparison.Ordinal);
        await RunAsync("skopeo", "copy", "--quiet", $"docker-archive:{archive}", $"oci:{_temp.File("back")}:back");
        await using var back = OciLayoutStore.Open(_temp.File("back"));
        var root = await back.ResolveAsync("back", CancellationToken.None);
        var document = ManifestDocument.Parse((await back.ReadManifestAsync(root, CancellationToken.None)).Span, root.MediaType);
        Assert.Equal(config.Digest, document.Config!.Digest);

        // As an OCI archive skopeo sees the exact manifest Airlock wrote.
        var raw = await RunAsync("skopeo", "inspect", "--raw", $"oci-archive:{archive}:1.0");
        Assert.Equal(image.Digest, Digest.Sha256(System.Text.Encoding.UTF8.GetBytes(raw)));
    }

    [Fact]
    public async Task Airlock_archive_loads_into_podman()
    {
        var (layout, image, config) = await LayoutAsync();
        await using var _ = layout;
        var archive = _temp.File("airlock.tar.gz");
        await using (var target = ArchiveTarget.Create(archive))
        {
            await ImageGraph.CopyAsync(layout, target, image, new CopyOptions { Reference = Name }, null, CancellationToken.None);
            await target.CompleteAsync(CancellationToken.None);
        }

        // podman refuses a runroot path longer than 50 characters.
        var runRoot = Path.Combine("/tmp", "alk-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            string[] storage = ["--root", _temp.File("podman-root"), "--runroot", runRoot, "--storage-driver", "vfs"];
            await RunAsync("podman", [.. storage, "load", "-i", archive]);
            var images = await RunAsync("podman", [.. storage, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
            Assert.Contains($"{Name} sha256:{config.Digest.Encoded}", images, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(runRoot))
            {
                Directory.Delete(runRoot, recursive: true);
            }
        }
    }
}
