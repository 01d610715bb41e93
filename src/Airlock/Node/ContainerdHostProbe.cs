using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Airlock.Node;

/// <summary>
/// What config.toml depends on in the machine: the cgroup driver and NVIDIA runtimes, found as K3s finds them.
/// Paths are parameters so tests can use a fake root and a fake PATH.
/// </summary>
public static class ContainerdHostProbe
{
    public const string NvidiaToolkitDir = "/usr/local/nvidia/toolkit";

    // Runtime handler name → executable, as K3s registers them.
    private static readonly (string Name, string Executable)[] NvidiaRuntimes =
    [
        ("nvidia", "nvidia-container-runtime"),
        ("nvidia-experimental", "nvidia-container-runtime-experimental"),
        ("nvidia-cdi", "nvidia-container-runtime.cdi"),
    ];

    /// <summary>
    /// runc must use the systemd cgroup driver when systemd is PID 1 and cgroups are v2 (unified): the kubelet
    /// uses it there, and the two must agree.
    /// </summary>
    public static bool DetectSystemdCgroup(string root = "/")
    {
        var comm = Path.Combine(root, "proc", "1", "comm");
        var pid1IsSystemd = File.Exists(comm) && File.ReadAllText(comm).Trim() == "systemd";
        var unified = File.Exists(Path.Combine(root, "sys", "fs", "cgroup", "cgroup.controllers"));
        return pid1IsSystemd && unified;
    }

    /// <summary>
    /// NVIDIA runtimes on <paramref name="pathVariable"/> with <paramref name="toolkitDir"/> searched first (the GPU
    /// operator's install wins over the distribution package), sorted by handler name.
    /// </summary>
    public static IReadOnlyList<ContainerdRuntime> DetectNvidiaRuntimes(string? pathVariable, string toolkitDir = NvidiaToolkitDir)
    {
        var dirs = new List<string> { toolkitDir };
        dirs.AddRange((pathVariable ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries));
        var found = new List<ContainerdRuntime>();
        foreach (var (name, executable) in NvidiaRuntimes)
        {
            var path = dirs.Select(d => Path.Combine(d, executable)).FirstOrDefault(IsExecutable);
            if (path is not null)
            {
                found.Add(new ContainerdRuntime(name, path));
            }
        }

        return found.OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
    }

    private static bool IsExecutable(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        if (OperatingSystem.IsWindows())
        {
            return true;
        }

        const UnixFileMode AnyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        return (File.GetUnixFileMode(path) & AnyExecute) != 0;
    }

    /// <summary>
    /// The config schema for a containerd version string: 1.x → version 2, 2.x and later → version 3.
    /// </summary>
    public static ContainerdConfigSchema SchemaForVersion(string version)
    {
        // "2" as a flag value, or the version word of `containerd --version` ("1.6.20~ds1", "2.1.9+unknown").
        var match = Regex.Match(version, @"(?:^|\s)v?(\d+)(?:\.\d+)*(?:[+~-]\S*)?(?=\s|$)", RegexOptions.CultureInvariant);
        if (!match.Success)
        {
            throw new FormatException($"cannot read a containerd version from \"{version.Trim()}\"; give 1.6, 1.7 or 2");
        }

        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 2 ? ContainerdConfigSchema.V3 : ContainerdConfigSchema.V2;
    }

    /// <summary>
    /// Asks the installed containerd its version. When there is none, version 2 is chosen: containerd 2.x still
    /// reads (and migrates) a version-2 file, whereas 1.x cannot read version 3.
    /// </summary>
    public static async Task<ContainerdConfigSchema> DetectSchemaAsync(string? pathVariable, CancellationToken cancellationToken)
    {
        var binary = (pathVariable ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/bin", "/usr/local/bin"])
            .Select(d => Path.Combine(d, "containerd")).FirstOrDefault(IsExecutable);
        if (binary is null)
        {
            return ContainerdConfigSchema.V2;
        }

        var info = new ProcessStartInfo(binary, "--version") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(info);
        if (process is null)
        {
            return ContainerdConfigSchema.V2;
        }

        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        return SchemaForVersion(output);
    }
}
