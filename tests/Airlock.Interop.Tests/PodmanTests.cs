using System.Text.Json;
using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>podman as a user drives it: pull from the registry, run, tag, push to another repository.</summary>
public sealed class PodmanTests : IAsyncLifetime
{
    private readonly TempRoot _work = TempRoot.Create("airlock-podman-test-");
    private readonly Podman _podman = new();
    private RegistryProcess? _registry;

    private RegistryProcess Registry => _registry ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync() => _registry = await RegistryProcess.StartAsync();

    public async Task DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        _podman.Dispose();
        _work.UnmountAndDelete();
    }

    [Fact]
    public async Task Podman_pulls_an_image_then_pushes_it_to_a_new_repository_that_skopeo_can_read()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();
        var source = $"{Registry.Host}/test/busybox:1";
        var target = $"{Registry.Host}/pushed/busybox:2";

        (await _podman.RunAsync(["pull", "--quiet", "--tls-verify=false", source])).EnsureSuccess();
        Assert.Equal(image.Digest.ToString(), await _podman.ImageDigestAsync(source));

        (await _podman.RunAsync(["tag", source, target])).EnsureSuccess();
        var digestFile = Path.Combine(_work.Path, "pushed.digest");
        (await _podman.RunAsync(["push", "--quiet", "--tls-verify=false", "--digestfile", digestFile, target])).EnsureSuccess();

        var inspect = (await Skopeo.RunAsync(["inspect", .. Skopeo.Tls(Registry), $"docker://{target}"])).EnsureSuccess();
        using var pushed = JsonDocument.Parse(inspect.Stdout);
        Assert.Equal((await File.ReadAllTextAsync(digestFile)).Trim(), pushed.RootElement.GetProperty("Digest").GetString());
        Assert.Equal(["2"], pushed.RootElement.GetProperty("RepoTags").EnumerateArray().Select(tag => tag.GetString()));
        Assert.Equal("amd64", pushed.RootElement.GetProperty("Architecture").GetString());

        // Whatever podman did to the compressed layers, the filesystem it pushed must be the one it pulled.
        var config = (await Skopeo.RunAsync(["inspect", "--config", .. Skopeo.Tls(Registry), $"docker://{target}"])).EnsureSuccess();
        using var pushedConfig = JsonDocument.Parse(config.Stdout);
        var diffIds = pushedConfig.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(id => id.GetString());
        var sourceConfig = (await Skopeo.RunAsync(["inspect", "--config", .. Skopeo.Tls(Registry), $"docker://{source}"])).EnsureSuccess();
        using var pulledConfig = JsonDocument.Parse(sourceConfig.Stdout);
        Assert.Equal(pulledConfig.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(id => id.GetString()), diffIds);
    }

    [Fact]
    public async Task Podman_runs_the_image_it_pulled_from_the_registry()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();
        var reference = $"{Registry.Host}/test/busybox:1";
        (await _podman.RunAsync(["pull", "--quiet", "--tls-verify=false", reference])).EnsureSuccess();

        // podman's default rlimits (nofile/nproc of a million) exceed this sandbox's hard limits.
        var run = await _podman.RunAsync(["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", reference]);

        Assert.Equal(TestImages.Greeting, run.EnsureSuccess().Stdout.Trim());
    }

    [Fact]
    public async Task Podman_pulls_the_amd64_image_of_a_multi_arch_index()
    {
        var image = await TestImages.WriteMultiArchAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox-multi:1", ["--all"])).EnsureSuccess();
        var reference = $"{Registry.Host}/test/busybox-multi:1";

        (await _podman.RunAsync(["pull", "--quiet", "--tls-verify=false", "--arch", "amd64", reference])).EnsureSuccess();

        var architecture = (await _podman.RunAsync(["image", "inspect", "--format", "{{.Architecture}}", reference])).EnsureSuccess();
        Assert.Equal("amd64", architecture.Stdout.Trim());
    }

    [Fact]
    public async Task Podman_pull_of_a_repository_the_registry_does_not_have_fails_and_stores_nothing()
    {
        var reference = $"{Registry.Host}/test/absent:1";

        var pull = await _podman.RunAsync(["pull", "--quiet", "--tls-verify=false", reference]);

        Assert.False(pull.Succeeded, pull.ToString());
        Assert.Contains("manifest unknown", pull.Stderr, StringComparison.OrdinalIgnoreCase);
        var images = (await _podman.RunAsync(["images", "--quiet"])).EnsureSuccess();
        Assert.Equal(string.Empty, images.Stdout.Trim());
    }
}
