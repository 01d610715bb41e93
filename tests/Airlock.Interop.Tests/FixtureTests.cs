using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Airlock.Interop.Tests.Fixtures;
using Airlock.Oci;

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
    public async Task Runnable_test_image_holds_busybox_with_sh_and_echo_links_at_fixed_times_and_a_matching_diff_id()
    {
        var work = TempRoot.Create("airlock-fixture-test-");
        try
        {
            var image = await TestImages.WriteRunnableAsync(Path.Combine(work.Path, "layout"));
            var manifest = ManifestDocument.Parse(image.ManifestBytes, image.MediaType);
            var layer = Assert.Single(manifest.Layers);
            var configBlob = manifest.Config ?? throw new InvalidOperationException("manifest has no config");

            using var tar = new MemoryStream();
            await using (var gzip = new GZipStream(File.OpenRead(BlobPath(image, layer.Digest)), CompressionMode.Decompress))
            {
                await gzip.CopyToAsync(tar);
            }

            using var config = JsonDocument.Parse(await File.ReadAllBytesAsync(BlobPath(image, configBlob.Digest)));
            var diffId = config.RootElement.GetProperty("rootfs").GetProperty("diff_ids")[0].GetString();
            Assert.Equal(Digest.Sha256(tar.ToArray()).ToString(), diffId);

            tar.Position = 0;
            var entries = new List<(string Name, long Length, TarEntryType Type, string Link, DateTimeOffset Time, int Uid, int Gid)>();
            using (var reader = new TarReader(tar))
            {
                while (await reader.GetNextEntryAsync(copyData: false) is { } entry)
                {
                    entries.Add((entry.Name, entry.Length, entry.EntryType, entry.LinkName, entry.ModificationTime, entry.Uid, entry.Gid));
                }
            }

            Assert.Equal(["bin/", "bin/busybox", "bin/sh", "bin/echo"], entries.Select(entry => entry.Name));
            Assert.Equal(new FileInfo(TestImages.BusyboxPath).Length, entries[1].Length);
            Assert.All(entries.Skip(2), link => Assert.Equal((TarEntryType.SymbolicLink, "busybox"), (link.Type, link.Link)));
            Assert.All(entries, entry => Assert.Equal((new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero), 0, 0), (entry.Time, entry.Uid, entry.Gid)));
        }
        finally
        {
            work.UnmountAndDelete();
        }
    }

    private static string BlobPath(TestImage image, Digest digest) => Path.Combine(image.LayoutPath, "blobs", digest.Algorithm, digest.Encoded);

    [Fact]
    public void The_airlock_CLI_is_found_in_the_build_output_of_this_test_configuration()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent?.Name;

        var cli = RegistryProcess.AirlockCliPath();

        Assert.True(File.Exists(cli), cli);
        Assert.Contains($"/{configuration}/", cli, StringComparison.Ordinal);
    }
}
