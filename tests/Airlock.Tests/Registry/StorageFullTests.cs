using System.Diagnostics;
using System.Net;

namespace Airlock.Tests.Registry;

/// <summary>
/// A registry whose disk fills up must say so clearly, leave nothing half-written visible, and keep serving
/// what it has. The store lives on a small tmpfs the test mounts (root) and unmounts.
/// </summary>
public sealed class StorageFullTests : IAsyncLifetime
{
    private readonly string _mount = Directory.CreateTempSubdirectory("airlock-full-").FullName;
    private bool _mounted;

    public async Task InitializeAsync() => _mounted = await RunAsync("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", _mount) == 0;

    public async Task DisposeAsync()
    {
        if (_mounted)
        {
            await RunAsync("umount", _mount);
        }

        Directory.Delete(_mount, recursive: true);
    }

    private static async Task<int> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        await process.WaitForExitAsync();
        return process.ExitCode;
    }

    [Fact]
    public async Task A_full_disk_answers_507_with_a_clear_error_and_pulls_keep_working()
    {
        Assert.True(_mounted, "mounting a tmpfs needs root; test.sh runs the tests as root");
        await using var registry = await TestRegistry.StartAsync(dataDirectory: Path.Combine(_mount, "data"));
        var image = await registry.PushImageAsync("app", "v1");

        var big = new byte[8 << 20];
        Random.Shared.NextBytes(big);
        using var push = await registry.PushBlobAsync("app", big);

        Assert.Equal((HttpStatusCode)507, push.StatusCode);
        var (code, detail) = await TestRegistry.ErrorOf(push);
        Assert.Equal("UNKNOWN", code);
        Assert.Contains("no space left", detail, StringComparison.OrdinalIgnoreCase);

        using var head = await registry.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/app/blobs/{TestRegistry.DigestOf(big)}"));
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);

        using var manifest = await registry.Client.GetAsync("/v2/app/manifests/v1");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal(image.Manifest, await manifest.Content.ReadAsByteArrayAsync());
        using var layer = await registry.Client.GetAsync($"/v2/app/blobs/{TestRegistry.DigestOf(image.Layer)}");
        Assert.Equal(image.Layer, await layer.Content.ReadAsByteArrayAsync());

        Assert.Empty(Directory.GetFiles(Path.Combine(_mount, "data", "registry", "ingest")));
    }
}
