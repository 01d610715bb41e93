using System.Collections;
using Airlock.Cli.Hosting;
using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// The air-gap round trip through Airlock's own registry: <c>airlock images save</c> from a registry
/// into an archive that containerd imports and runs, <c>airlock images load</c> of that archive into a
/// registry with the digests unchanged, and <c>copy</c> between registry and layout.
/// </summary>
public sealed class BundlesRegistryTests : IAsyncLifetime
{
    private readonly TempRoot _work = TempRoot.Create("airlock-bundles-reg-");
    private RegistryProcess? _registry;
    private ContainerdProcess? _containerd;

    private RegistryProcess Registry => _registry ?? throw new InvalidOperationException("not started");

    private ContainerdProcess Containerd => _containerd ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        var registry = RegistryProcess.StartAsync();
        var containerd = ContainerdProcess.StartAsync();
        _registry = await registry;
        _containerd = await containerd;
    }

    public async Task DisposeAsync()
    {
        if (_containerd is not null)
        {
            await _containerd.DisposeAsync();
        }

        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    private static async Task<(int Code, string Output)> AirlockAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(args, new Hashtable(), output, error);
        return (code, output + error.ToString());
    }

    [Fact]
    public async Task Saved_from_the_registry_the_archive_imports_into_containerd_and_runs()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "layout"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();
        var reference = $"{Registry.Host}/test/busybox:1";
        var archive = Path.Combine(_work.Path, "busybox.tar");

        var (code, output) = await AirlockAsync("images", "save", "--quiet", "-o", archive, reference);
        Assert.True(code == 0, output);

        (await Containerd.CtrAsync(["images", "import", archive])).EnsureSuccess();
        var listing = (await Containerd.CtrAsync(["images", "ls"])).EnsureSuccess();
        Assert.Contains(image.Digest.ToString(), listing.Stdout, StringComparison.Ordinal);
        var run = await Containerd.RunAsync(reference);
        Assert.True(run.Succeeded, $"{run}\ncontainerd log:\n{Containerd.RecentOutput}");
        Assert.Equal(TestImages.Greeting, run.Stdout.Trim());
    }

    [Fact]
    public async Task A_multi_arch_image_loaded_from_a_zstd_archive_keeps_its_index_digest()
    {
        var image = await TestImages.WriteMultiArchAsync(Path.Combine(_work.Path, "multi"));
        (await Skopeo.PushAsync(image, Registry, "test/multi:1", ["--all"])).EnsureSuccess();
        var archive = Path.Combine(_work.Path, "multi.tar.zst");
        Assert.Equal(0, (await AirlockAsync("images", "save", "--quiet", "-o", archive, $"{Registry.Host}/test/multi:1")).Code);

        var (code, output) = await AirlockAsync("images", "load", "--quiet", archive, "--to", $"{Registry.Host}/mirror");
        Assert.True(code == 0, output);

        // The source registry host is replaced by the target and the repository path kept.
        var raw = await Skopeo.RawManifestAsync(Registry, "mirror/test/multi:1");
        Assert.Equal(image.ManifestBytes, raw);
    }

    [Fact]
    public async Task Copy_from_the_registry_to_an_oci_layout_and_back_preserves_the_manifest()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "layout"), ImageFlavor.Docker);
        (await Skopeo.PushAsync(image, Registry, "test/docker:1")).EnsureSuccess();
        var layout = Path.Combine(_work.Path, "copied");

        Assert.Equal(0, (await AirlockAsync("images", "copy", "--quiet", $"docker://{Registry.Host}/test/docker:1", $"oci:{layout}:docker")).Code);
        var (code, output) = await AirlockAsync("images", "copy", "--quiet", $"oci:{layout}:docker", $"docker://{Registry.Host}/copied/docker:2");
        Assert.True(code == 0, output);

        Assert.Equal(image.ManifestBytes, await Skopeo.RawManifestAsync(Registry, "copied/docker:2"));
    }

    [Fact]
    public async Task Saving_a_missing_image_fails_with_the_registry_error_and_writes_no_archive()
    {
        var archive = Path.Combine(_work.Path, "missing.tar");

        var (code, output) = await AirlockAsync("images", "save", "--quiet", "-o", archive, $"{Registry.Host}/test/absent:1");

        Assert.Equal(1, code);
        Assert.Contains("test/absent", output, StringComparison.Ordinal);
        Assert.Contains("not found", output, StringComparison.OrdinalIgnoreCase);
        Assert.False(File.Exists(archive));
    }
}
