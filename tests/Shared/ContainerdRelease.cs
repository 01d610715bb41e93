namespace Airlock.Testing;

/// <summary>
/// A containerd release the node tests run the rendered config on: Debian 12's own (on PATH, installed by
/// test.sh), or one that scripts/fetch-containerd-versions.sh unpacked from a newer Debian's package into
/// <c>$AIRLOCK_TEST_TOOLS</c> (default <c>/var/tmp/airlock-test-tools</c>) without installing it.
/// </summary>
public sealed record ContainerdRelease(string Series)
{
    public static ContainerdRelease Debian12 { get; } = new("1.6");

    /// <summary>Debian 13's 1.7: still config version 2, the CRI plugin split not yet done.</summary>
    public static ContainerdRelease Series17 { get; } = new("1.7");

    /// <summary>Debian unstable's 2.x: config version 3 and the split CRI plugins (<c>io.containerd.cri.v1.*</c>).</summary>
    public static ContainerdRelease Series2 { get; } = new("2");

    private static string ToolsDirectory => Environment.GetEnvironmentVariable("AIRLOCK_TEST_TOOLS") is { Length: > 0 } tools ? tools : "/var/tmp/airlock-test-tools";

    /// <summary>
    /// The folder holding this release's <c>containerd</c>, <c>ctr</c> and shim; null for Debian 12's (on PATH). Throws,
    /// naming the folder and the script that fills it, when the release has not been fetched.
    /// </summary>
    public string? BinDirectory()
    {
        if (this == Debian12)
        {
            return null;
        }

        var bin = Path.Combine(ToolsDirectory, $"containerd-{Series}", "usr", "bin");
        if (!File.Exists(Path.Combine(bin, "containerd")))
        {
            throw new InvalidOperationException(
                $"containerd {Series} is not in {bin}: run scripts/fetch-containerd-versions.sh (test.sh does when run as root)");
        }

        return bin;
    }

    /// <summary>
    /// The command prefix that makes <c>containerd</c> (and the shims it starts, which it finds on PATH) this
    /// release's: <c>env PATH=…</c>, which execs containerd so the PID stays containerd's. Null for Debian 12's.
    /// </summary>
    public IReadOnlyList<string>? Launcher() =>
        BinDirectory() is { } bin ? ["env", $"PATH={bin}:{Environment.GetEnvironmentVariable("PATH")}"] : null;
}
