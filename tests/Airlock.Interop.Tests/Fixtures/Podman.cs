namespace Airlock.Interop.Tests.Fixtures;

/// <summary>
/// podman with its own storage (<c>--root</c>, <c>--runroot</c>, vfs driver) in a temp folder, so a test
/// never reads or changes the machine's images; cgroupfs and a file event log because there is no
/// systemd or journal here.
/// </summary>
public sealed class Podman : IDisposable
{
    private readonly TempRoot _root = TempRoot.Create("airlock-podman-");

    public Task<ToolResult> RunAsync(IEnumerable<string> arguments, CancellationToken cancellationToken = default) =>
        Tool.RunAsync("podman",
        [
            "--root", Path.Combine(_root.Path, "root"),
            "--runroot", Path.Combine(_root.Path, "run"),
            "--tmpdir", Path.Combine(_root.Path, "tmp"),
            "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            .. arguments,
        ], cancellationToken: cancellationToken);

    /// <summary>The digest podman reports for a local image (its manifest digest as pulled or pushed).</summary>
    public async Task<string> ImageDigestAsync(string reference, CancellationToken cancellationToken = default)
    {
        var inspect = (await RunAsync(["image", "inspect", "--format", "{{.Digest}}", reference], cancellationToken)).EnsureSuccess();
        return inspect.Stdout.Trim();
    }

    public void Dispose()
    {
        var stuck = _root.UnmountAndDelete();
        if (stuck.Count > 0)
        {
            throw new InvalidOperationException($"could not unmount {string.Join(", ", stuck)}");
        }
    }
}
