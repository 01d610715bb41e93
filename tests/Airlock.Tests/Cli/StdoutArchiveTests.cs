using System.Diagnostics;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Oci;
using Airlock.Tests.Bundles;

namespace Airlock.Tests.Cli;

/// <summary>
/// The Canonical guide's shape, <c>regctl image export … &gt; pause.tar</c>: the archive goes to stdout and nothing else
/// does (progress and messages go to stderr), so the redirected file is the archive. Run as a real process, since only
/// a process has a stdout to redirect.
/// </summary>
public sealed class StdoutArchiveTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static async Task<(int Code, byte[] Stdout, string Stderr)> RunAirlockAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "airlock.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // No config file: an explicitly given one must exist, /dev/null is the empty one.
        start.Environment["AIRLOCK_CONFIG"] = "/dev/null";
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var stdout = new MemoryStream();
        var copying = process.StandardOutput.BaseStream.CopyToAsync(stdout, timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        await copying;
        return (process.ExitCode, stdout.ToArray(), await stderr);
    }

    private async Task<Descriptor> LayoutAsync()
    {
        await using var layout = OciLayoutStore.Create(_temp.File("layout"));
        return await TestImages.AddImageAsync(layout, Platform.Host, [TestImages.MakeLayer(71), TestImages.MakeLayer(72, 300_000)], "app");
    }

    [Fact]
    public async Task Save_to_dash_writes_only_the_archive_to_stdout()
    {
        var image = await LayoutAsync();

        var (code, stdout, stderr) = await RunAirlockAsync("images", "save", "-o", "-", "--name", "registry.local/team/app:1", $"oci:{_temp.File("layout")}:app");

        Assert.True(code == 0, stderr);
        Assert.Contains("Copying blob", stderr, StringComparison.Ordinal);
        Assert.Contains("Saved ", stderr, StringComparison.Ordinal);
        var archive = _temp.File("from-stdout.tar");
        await File.WriteAllBytesAsync(archive, stdout);
        await using var read = await ArchiveSource.OpenAsync(archive, null, CancellationToken.None);
        var entry = Assert.Single(read.Entries);
        Assert.Equal(("registry.local/team/app:1", image.Digest), (OciLayoutStore.NameOf(entry), entry.Digest));
        Assert.Equal(ArchiveCompression.None, read.Compression);
    }

    [Fact]
    public async Task Export_with_platform_local_and_stdout_redirected_needs_no_o()
    {
        var image = await LayoutAsync();

        var (code, stdout, stderr) = await RunAirlockAsync("images", "export", $"oci:{_temp.File("layout")}:app", "--platform", "local",
            "--name", "ghcr.io/canonical/k8s-snap/pause:3.10", "--compress", "gzip");

        Assert.True(code == 0, stderr);
        var archive = _temp.File("pause.tar");
        await File.WriteAllBytesAsync(archive, stdout);
        await using var read = await ArchiveSource.OpenAsync(archive, null, CancellationToken.None);
        Assert.Equal(ArchiveCompression.Gzip, read.Compression);
        var entry = Assert.Single(read.Entries);
        Assert.Equal(("ghcr.io/canonical/k8s-snap/pause:3.10", image.Digest), (OciLayoutStore.NameOf(entry), entry.Digest));
    }
}
