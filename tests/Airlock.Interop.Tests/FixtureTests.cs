using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// The fixtures promise to leave the machine as they found it, even when a test leaves a container
/// running: other suites (and other engineers' tests) share this machine's mounts, cgroups and ports.
/// </summary>
public sealed class FixtureTests
{
    [Fact]
    public async Task Stopping_containerd_removes_a_running_container_its_shim_its_mounts_and_the_temp_root()
    {
        var work = TempRoot.Create("airlock-fixture-test-");
        try
        {
            await using var registry = await RegistryProcess.StartAsync();
            var image = await TestImages.WriteRunnableAsync(Path.Combine(work.Path, "source"));
            (await Skopeo.PushAsync(image, registry, "test/busybox:1")).EnsureSuccess();
            await using var containerd = await ContainerdProcess.StartAsync();
            var reference = $"{registry.Host}/test/busybox:1";
            (await containerd.PullAsync(reference, containerd.WriteHostsDirectory(registry.Host, registry.BaseAddress))).EnsureSuccess();

            await containerd.StartDetachedAsync(reference, ["/bin/busybox", "sleep", "600"]);
            var tasks = (await containerd.CtrAsync(["tasks", "ls"])).EnsureSuccess();
            Assert.Contains("RUNNING", tasks.Stdout, StringComparison.Ordinal);
            Assert.NotEmpty(containerd.OwnShimPids());
            var root = new DirectoryInfo(containerd.RootPath);

            await containerd.DisposeAsync();

            Assert.Empty(containerd.OwnShimPids());
            Assert.False(Directory.Exists(root.FullName), $"{root.FullName} is left behind");
            Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), line => line.Contains(root.FullName, StringComparison.Ordinal));
            Assert.False(Directory.Exists($"/proc/{containerd.Pid}"), "containerd is still running");
        }
        finally
        {
            work.UnmountAndDelete();
        }
    }

    [Fact]
    public async Task Stopping_the_registry_ends_its_process_and_deletes_its_data()
    {
        var registry = await RegistryProcess.StartAsync();
        var pid = registry.Pid;
        var dataDirectory = registry.DataDirectory;
        Assert.True(Directory.Exists(dataDirectory), dataDirectory);
        using (var client = registry.CreateHttpClient())
        {
            using var response = await client.GetAsync("v2/");
            Assert.True(response.IsSuccessStatusCode, $"GET /v2/ answered {response.StatusCode}");
        }

        await registry.DisposeAsync();

        Assert.False(Directory.Exists($"/proc/{pid}"), $"registry pid {pid} is still running");
        Assert.False(Directory.Exists(dataDirectory), $"{dataDirectory} is left behind");
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        await Assert.ThrowsAsync<HttpRequestException>(() => probe.GetAsync(new Uri(registry.BaseAddress, "v2/")));
    }

    [Fact]
    public void The_airlock_CLI_is_found_in_the_build_output_of_this_test_configuration()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent?.Name;

        var cli = RegistryProcess.AirlockCliPath();

        Assert.True(File.Exists(cli), cli);
        Assert.Contains($"/{configuration}/", cli, StringComparison.Ordinal);
    }
}
