using Airlock.Node.Preflight;

namespace Airlock.Tests.Node.Preflight;

/// <summary>Each host check against a fixture root (fake /proc, /sys), so both outcomes are exercised anywhere.</summary>
public sealed class PreflightChecksTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("airlock-preflight-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private void Write(string path, string content)
    {
        var full = Path.Combine(_root, path.TrimStart('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
    }

    private PreflightHost Host(IReadOnlyDictionary<string, string>? env = null, string[]? path = null) => new()
    {
        Root = _root,
        DataDir = Path.Combine(_root, "data"),
        KernelRelease = "6.1.0-test",
        SearchPath = path ?? [Path.Combine(_root, "bin")],
        Environment = env ?? new Dictionary<string, string>(),
        MinimumFreeBytes = 1,
        RecommendedFreeBytes = 1,
    };

    private static CheckResult Single(IEnumerable<CheckResult> results, string name) => results.Single(r => r.Name == name);

    private const string RouteHeader = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";

    [Fact]
    public void Missing_default_route_fails_and_prints_the_dummy_interface_recipe()
    {
        Write("/proc/net/route", RouteHeader + "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
        Write("/proc/net/ipv6_route", string.Empty);
        var result = Single(new DefaultRouteCheck().Run(Host()), "default-route");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("ip link add dummy0 type dummy", result.Fix, StringComparison.Ordinal);
        Assert.Contains("ip route add default", result.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void An_ipv4_default_route_passes()
    {
        Write("/proc/net/route", RouteHeader + "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n");
        Assert.Equal(CheckStatus.Pass, Single(new DefaultRouteCheck().Run(Host()), "default-route").Status);
    }

    [Fact]
    public void Missing_containerd_and_runc_fail_with_the_install_command()
    {
        var results = new RuntimeCheck().Run(Host()).ToList();
        Assert.All(results, r => Assert.Equal(CheckStatus.Fail, r.Status));
        Assert.Equal("apt-get install containerd", Single(results, "containerd").Fix);
        Assert.Equal("apt-get install runc", Single(results, "runc").Fix);
    }

    [Fact]
    public void Runtime_versions_are_reported_from_the_binaries()
    {
        Write("/bin/containerd", "#!/bin/sh\necho 'containerd github.com/containerd/containerd 1.6.20'\n");
        Write("/bin/runc", "#!/bin/sh\necho 'runc version 1.1.5'\n");
        foreach (var tool in new[] { "containerd", "runc" })
        {
            File.SetUnixFileMode(Path.Combine(_root, "bin", tool), UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        }

        var results = new RuntimeCheck().Run(Host()).ToList();
        Assert.Contains("1.6.20", Single(results, "containerd").Message, StringComparison.Ordinal);
        Assert.Contains("1.1.5", Single(results, "runc").Message, StringComparison.Ordinal);
        Assert.All(results, r => Assert.Equal(CheckStatus.Pass, r.Status));
    }

    [Fact]
    public void Cgroup_v2_without_the_memory_controller_fails()
    {
        Write("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n");
        var result = Single(new CgroupCheck().Run(Host()), "cgroups");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("memory", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cgroup_v2_with_the_needed_controllers_passes_and_v1_only_warns()
    {
        Write("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
        Assert.Equal(CheckStatus.Pass, Single(new CgroupCheck().Run(Host()), "cgroups").Status);

        File.Delete(Path.Combine(_root, "sys/fs/cgroup/cgroup.controllers"));
        foreach (var c in new[] { "cpu", "memory", "pids" })
        {
            Directory.CreateDirectory(Path.Combine(_root, "sys/fs/cgroup", c));
        }

        Assert.Equal(CheckStatus.Warn, Single(new CgroupCheck().Run(Host()), "cgroups").Status);
    }

    [Fact]
    public void Kernel_modules_are_found_loaded_or_builtin_and_missing_ones_fail_with_modprobe()
    {
        Write("/proc/modules", "overlay 151552 0 - Live 0x0000000000000000\n");
        var results = new KernelModuleCheck().Run(Host()).ToList();
        Assert.Equal(CheckStatus.Pass, Single(results, "module-overlay").Status);
        var bridge = Single(results, "module-br_netfilter");
        Assert.Equal(CheckStatus.Fail, bridge.Status);
        Assert.StartsWith("modprobe br_netfilter", bridge.Fix, StringComparison.Ordinal);

        Write("/lib/modules/6.1.0-test/modules.builtin", "kernel/net/bridge/br_netfilter.ko\n");
        Assert.Equal(CheckStatus.Pass, Single(new KernelModuleCheck().Run(Host()), "module-br_netfilter").Status);
    }

    [Fact]
    public void Ip_forward_off_fails_with_the_sysctl_fix()
    {
        Write("/proc/sys/net/ipv4/ip_forward", "0\n");
        var result = Single(new SysctlCheck().Run(Host()), "sysctl net.ipv4.ip_forward");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("sysctl -w net.ipv4.ip_forward=1", result.Fix, StringComparison.Ordinal);

        Write("/proc/sys/net/ipv4/ip_forward", "1\n");
        Assert.Equal(CheckStatus.Pass, Single(new SysctlCheck().Run(Host()), "sysctl net.ipv4.ip_forward").Status);
    }

    [Fact]
    public void Data_dir_below_the_free_space_minimum_fails()
    {
        var host = new PreflightHost { Root = _root, DataDir = Path.Combine(_root, "data"), MinimumFreeBytes = long.MaxValue, RecommendedFreeBytes = long.MaxValue };
        var result = Single(new DataDirCheck().Run(host), "data-dir");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("GiB", result.Message, StringComparison.Ordinal);
        Assert.Equal(CheckStatus.Pass, Single(new DataDirCheck().Run(Host()), "data-dir").Status);
    }

    [Fact]
    public void Clock_before_the_build_fails()
    {
        var host = new PreflightHost { Root = _root, Time = new FixedTime(new DateTimeOffset(1970, 1, 1, 0, 0, 0, TimeSpan.Zero)) };
        var result = Single(new ClockCheck().Run(host), "clock");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("timedatectl", result.Fix, StringComparison.Ordinal);
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
