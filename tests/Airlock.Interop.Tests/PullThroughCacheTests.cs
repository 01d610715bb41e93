using System.Text.Json;
using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// <c>airlock registry --proxy</c> between real clients and a real upstream: Debian's docker-registry holds
/// the image, containerd pulls it through the cache with a hosts.toml (so it sends <c>?ns=</c>), and skopeo
/// pulls it again by the registry path prefix after the upstream is gone.
/// </summary>
public sealed class PullThroughCacheTests : IAsyncLifetime
{
    private readonly TempRoot _work = TempRoot.Create("airlock-proxy-test-");
    private RegistryProcess? _upstream;
    private RegistryProcess? _cache;
    private ContainerdProcess? _containerd;

    public async Task InitializeAsync()
    {
        var containerd = ContainerdProcess.StartAsync();
        _upstream = await RegistryProcess.StartAsync(RegistryKind.Distribution);
        _cache = await RegistryProcess.StartAsync(RegistryKind.Airlock, new RegistryOptions
        {
            AirlockArguments = ["--proxy", $"{_upstream.Host}={_upstream.BaseAddress}", "--proxy-timeout", "2s"],
        });
        _containerd = await containerd;
    }

    public async Task DisposeAsync()
    {
        foreach (var disposable in new IAsyncDisposable?[] { _containerd, _cache, _upstream })
        {
            if (disposable is not null)
            {
                await disposable.DisposeAsync();
            }
        }

        _work.UnmountAndDelete();
    }

    [Fact]
    public async Task Containerd_pulls_through_the_cache_and_skopeo_still_pulls_the_image_after_the_upstream_stopped()
    {
        var upstream = _upstream!;
        var cache = _cache!;
        var containerd = _containerd!;
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "oci"));
        (await Skopeo.PushAsync(image, upstream, "test/busybox:1")).EnsureSuccess();

        var hosts = containerd.WriteHostsDirectory(upstream.Host, cache.BaseAddress);
        var pull = await containerd.PullAsync($"{upstream.Host}/test/busybox:1", hosts);
        Assert.True(pull.Succeeded, $"{pull}\ncache log:\n{cache.RecentOutput}");
        var cachedName = $"{upstream.Host.Replace(':', '_')}/test/busybox";
        using (var client = cache.CreateHttpClient())
        using (var catalog = JsonDocument.Parse(await client.GetStringAsync("/v2/_catalog")))
        {
            Assert.Contains(cachedName, catalog.RootElement.GetProperty("repositories").EnumerateArray().Select(e => e.GetString()));
        }

        await upstream.DisposeAsync();
        _upstream = null;

        var copy = await Skopeo.RunAsync(["copy", "--quiet", .. Skopeo.SourceTls(cache), $"docker://{cache.Host}/{cachedName}:1", $"oci:{Path.Combine(_work.Path, "copy")}:1"]);
        Assert.True(copy.Succeeded, $"{copy}\ncache log:\n{cache.RecentOutput}");
        var manifest = await Skopeo.RawManifestAsync(cache, $"{cachedName}@{image.Digest}");
        Assert.Equal(image.ManifestBytes, manifest);
    }

    [Fact]
    public async Task The_cli_refuses_a_private_upstream_on_a_registry_without_authentication()
    {
        var registries = Path.Combine(_work.Path, "registries.yaml");
        await File.WriteAllTextAsync(registries, """
            configs:
              "mirror.example:5000":
                auth:
                  username: cache
                  password: secret
            """);
        var config = Path.Combine(_work.Path, "config.yaml");
        await File.WriteAllTextAsync(config, "{}\n");

        var run = await Tool.RunAsync(RegistryProcess.AirlockCliPath(),
            ["registry", "--listen", "127.0.0.1:0", "--data-dir", Path.Combine(_work.Path, "data"),
             "--proxy", "docker.io=https://mirror.example:5000", "--registries", registries],
            TimeSpan.FromSeconds(30), new Dictionary<string, string> { ["AIRLOCK_CONFIG"] = config });

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("has credentials in --registries, but this registry has no authentication", run.Stderr, StringComparison.Ordinal);
    }
}
