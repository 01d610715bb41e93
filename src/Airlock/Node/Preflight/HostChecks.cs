using System.Globalization;

namespace Airlock.Node.Preflight;

/// <summary>
/// Kubernetes services pick their interface from the default route; air-gapped hosts often have none,
/// and then kube-proxy and flannel fail in ways that do not mention routes at all.
/// </summary>
internal sealed class DefaultRouteCheck : IPreflightCheck
{
    private const string Name = "default-route";

    public const string DummyRouteRecipe =
        "ip link add dummy0 type dummy && ip link set dummy0 up && ip addr add 203.0.113.254/31 dev dummy0 && "
        + "ip route add default via 203.0.113.255 dev dummy0 metric 1000   (make it persistent, e.g. with a systemd-networkd .netdev/.network pair)";

    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        var v4 = host.ReadFile("/proc/net/route");
        var v6 = host.ReadFile("/proc/net/ipv6_route");
        if (v4 is null && v6 is null)
        {
            yield return CheckResult.Warn(Name, "cannot read the routing table (/proc/net/route)");
            yield break;
        }

        var hasV4 = v4 is not null && v4.Split('\n').Skip(1)
            .Select(line => line.Split('\t', StringSplitOptions.TrimEntries))
            .Any(f => f.Length > 7 && f[1] == "00000000" && f[7] == "00000000");
        var hasV6 = v6 is not null && v6.Split('\n')
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(f => f.Length > 9 && f[0] == new string('0', 32) && f[1] == "00" && f[9] != "lo");
        if (hasV4 || hasV6)
        {
            yield return CheckResult.Pass(Name, hasV4 && hasV6 ? "IPv4 and IPv6 default routes present" : hasV4 ? "IPv4 default route present" : "IPv6 default route present");
        }
        else
        {
            yield return CheckResult.Fail(Name, "no default route: Kubernetes needs one to choose the node's interface, even when nothing is reachable through it", DummyRouteRecipe);
        }
    }
}

/// <summary>containerd and runc present, and their versions (Airlock renders config for 1.6, 1.7 and 2.x).</summary>
internal sealed class RuntimeCheck : IPreflightCheck
{
    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        foreach (var tool in new[] { "containerd", "runc" })
        {
            var name = tool;
            var path = host.FindExecutable(tool);
            if (path is null)
            {
                yield return CheckResult.Fail(name, $"{tool} is not installed (not found on PATH)", $"apt-get install {tool}");
                continue;
            }

            var version = PreflightHost.VersionOf(path);
            yield return version is null
                ? CheckResult.Warn(name, $"{path} does not answer --version", $"reinstall it: apt-get install --reinstall {tool}")
                : CheckResult.Pass(name, $"{path}: {version}");
        }
    }
}

/// <summary>cgroup v2 with the controllers the kubelet needs.</summary>
internal sealed class CgroupCheck : IPreflightCheck
{
    private const string Name = "cgroups";
    private const string UnifiedFix = "boot with systemd.unified_cgroup_hierarchy=1 (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub and reboot)";
    private static readonly string[] Required = ["cpu", "memory", "pids"];

    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        var controllers = host.ReadFile("/sys/fs/cgroup/cgroup.controllers");
        if (controllers is null)
        {
            var missingV1 = Required.Where(c => !host.Exists($"/sys/fs/cgroup/{c}")).ToArray();
            yield return missingV1.Length == 0
                ? CheckResult.Warn(Name, "cgroup v1 (no unified hierarchy): works, but Kubernetes has deprecated it", UnifiedFix)
                : CheckResult.Fail(Name, $"neither cgroup v2 nor the cgroup v1 controllers {string.Join(", ", missingV1)} are mounted", UnifiedFix);
            yield break;
        }

        var present = controllers.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);
        var missing = Required.Where(c => !present.Contains(c)).ToArray();
        yield return missing.Length == 0
            ? CheckResult.Pass(Name, $"cgroup v2 with controllers: {string.Join(' ', present.Order(StringComparer.Ordinal))}")
            : CheckResult.Fail(Name, $"cgroup v2 controllers missing: {string.Join(", ", missing)}",
                "enable them in the parent cgroup (echo '+cpu +memory +pids' > /sys/fs/cgroup/cgroup.subtree_control) or with kernel parameters such as cgroup_enable=memory");
    }
}

/// <summary>What the kernel has of a module: loaded or built in, or installed on disk to be loaded on demand.</summary>
internal static class KernelModules
{
    /// <summary>Loaded (<c>/proc/modules</c>, <c>/sys/module</c>) or built in (<c>modules.builtin</c>).</summary>
    public static bool IsAvailable(PreflightHost host, string module)
    {
        var loaded = (host.ReadFile("/proc/modules") ?? string.Empty).Split('\n').Select(line => line.Split(' ')[0]);
        return loaded.Contains(module, StringComparer.Ordinal) || host.Exists($"/sys/module/{module}")
            || Listed(host.ReadFile($"/lib/modules/{host.KernelRelease}/modules.builtin"), module);
    }

    /// <summary>Installed for the running kernel (<c>modules.dep</c>), so the kernel loads it when it is first needed.</summary>
    public static bool IsInstalled(PreflightHost host, string module) =>
        Listed(host.ReadFile($"/lib/modules/{host.KernelRelease}/modules.dep")?.Split('\n').Select(line => line.Split(':')[0]), module);

    private static bool Listed(string? file, string module) => Listed(file?.Split('\n'), module);

    // Paths such as kernel/drivers/net/wireguard/wireguard.ko.xz; '-' and '_' are the same in module names.
    private static bool Listed(IEnumerable<string>? paths, string module) =>
        paths is not null && paths.Any(path =>
        {
            var name = Path.GetFileName(path.Trim());
            var dot = name.IndexOf(".ko", StringComparison.Ordinal);
            return dot > 0 && string.Equals(name[..dot].Replace('-', '_'), module, StringComparison.Ordinal);
        });
}

/// <summary>overlay (containerd's snapshotter) and br_netfilter (pod traffic through iptables).</summary>
internal sealed class KernelModuleCheck : IPreflightCheck
{
    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        var filesystems = host.ReadFile("/proc/filesystems") ?? string.Empty;
        foreach (var module in new[] { "overlay", "br_netfilter" })
        {
            var name = "module-" + module;
            var present = KernelModules.IsAvailable(host, module)
                || (module == "overlay" && filesystems.Split('\n').Any(l => l.TrimEnd().EndsWith("\toverlay", StringComparison.Ordinal)))
                || (module == "br_netfilter" && host.Exists("/proc/sys/net/bridge/bridge-nf-call-iptables"));
            yield return present
                ? CheckResult.Pass(name, $"{module} is available")
                : CheckResult.Fail(name, $"kernel module {module} is not loaded",
                    $"modprobe {module} && echo {module} > /etc/modules-load.d/airlock-{module}.conf");
        }
    }
}

/// <summary>Packet forwarding must be on for pod networking.</summary>
internal sealed class SysctlCheck : IPreflightCheck
{
    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        foreach (var (key, wanted) in new[] { ("net.ipv4.ip_forward", "1"), ("net.bridge.bridge-nf-call-iptables", "1") })
        {
            var value = host.ReadFile("/proc/sys/" + key.Replace('.', '/'))?.Trim();
            var name = "sysctl " + key;
            if (value is null)
            {
                // The bridge key exists only once br_netfilter is loaded; that check reports the cause.
                yield return key.StartsWith("net.bridge.", StringComparison.Ordinal)
                    ? CheckResult.Warn(name, $"{key} is not present (br_netfilter not loaded)", "modprobe br_netfilter")
                    : CheckResult.Fail(name, $"{key} cannot be read");
            }
            else if (value == wanted)
            {
                yield return CheckResult.Pass(name, $"{key} = {value}");
            }
            else
            {
                yield return CheckResult.Fail(name, $"{key} = {value}, Kubernetes needs {wanted}",
                    $"sysctl -w {key}={wanted} && echo '{key} = {wanted}' > /etc/sysctl.d/90-airlock.conf");
            }
        }
    }
}

/// <summary>The data dir must be writable and have room for images.</summary>
internal sealed class DataDirCheck : IPreflightCheck
{
    private const string Name = "data-dir";

    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        var dir = host.DataDir;
        var existing = dir;
        while (!Directory.Exists(existing) && Path.GetDirectoryName(existing) is { } parent)
        {
            existing = parent;
        }

        string? problem = null;
        try
        {
            var probe = Path.Combine(existing, $".airlock-check-{System.Environment.ProcessId}");
            File.WriteAllText(probe, "probe");
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem = ex.Message;
        }

        if (problem is not null)
        {
            yield return CheckResult.Fail(Name, $"{dir} is not writable ({existing}: {problem})", $"run as root or choose another directory with --data-dir");
            yield break;
        }

        var free = new DriveInfo(existing).AvailableFreeSpace;
        var freeText = string.Create(CultureInfo.InvariantCulture, $"{free / (double)(1L << 30):F1} GiB free");
        if (free < host.MinimumFreeBytes)
        {
            yield return CheckResult.Fail(Name, $"{dir}: only {freeText}", "free space or move --data-dir to a larger filesystem");
        }
        else if (free < host.RecommendedFreeBytes)
        {
            yield return CheckResult.Warn(Name, $"{dir}: {freeText}; image stores grow quickly", "plan for at least 20 GiB");
        }
        else
        {
            yield return CheckResult.Pass(Name, $"{dir} writable, {freeText}");
        }
    }
}

/// <summary>
/// Certificates and tokens are time-bound; air-gapped hosts without NTP drift or boot at 1970. A clock
/// before this build can never be right.
/// </summary>
internal sealed class ClockCheck : IPreflightCheck
{
    private const string Name = "clock";

    public static readonly DateTimeOffset Floor = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        var now = host.Time.GetUtcNow();
        if (now < Floor)
        {
            yield return CheckResult.Fail(Name, $"system clock says {now:u}, which is before this software was built; certificates will be rejected",
                "set the time (timedatectl set-time 'YYYY-MM-DD HH:MM:SS') and configure a local NTP source (chrony with a site server)");
        }
        else if (now > Floor.AddYears(30))
        {
            yield return CheckResult.Warn(Name, $"system clock says {now:u}, far in the future", "check the time: timedatectl");
        }
        else
        {
            var synced = host.ReadFile("/run/systemd/timesync/synchronized") is not null;
            yield return CheckResult.Pass(Name, $"{now:u}{(synced ? " (NTP synchronised)" : string.Empty)}");
        }
    }
}
