using Airlock.Node;

namespace Airlock.Tests.Node;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ContainerdConfigWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("al-cfg-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly RegistriesFile NoRegistries = RegistriesFile.Empty;

    [Fact]
    public void V3_config_uses_the_containerd_2_plugin_names_and_points_at_certs_d()
    {
        var config = ContainerdConfigWriter.Write(new ContainerdConfigOptions { DataDir = "/var/lib/airlock", SandboxImage = "reg.example.com/pause:3.10", SystemdCgroup = true }, NoRegistries);
        var table = SeedExamplesTests.AssertValidToml(config);
        Assert.Equal(3L, table["version"]);
        Assert.Contains("[plugins.'io.containerd.cri.v1.images']\n  snapshotter = \"overlayfs\"\n", config, StringComparison.Ordinal);
        Assert.Contains("[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = \"reg.example.com/pause:3.10\"\n", config, StringComparison.Ordinal);
        Assert.Contains("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n", config, StringComparison.Ordinal);
        Assert.EndsWith("[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"/var/lib/airlock/agent/etc/containerd/certs.d\"\n", config, StringComparison.Ordinal);
    }

    [Fact]
    public void V2_config_uses_the_containerd_1_x_cri_plugin_and_sandbox_image()
    {
        var config = ContainerdConfigWriter.Write(new ContainerdConfigOptions { DataDir = "/d", Schema = ContainerdConfigSchema.V2, SandboxImage = "p:1" }, NoRegistries);
        var table = SeedExamplesTests.AssertValidToml(config);
        Assert.Equal(2L, table["version"]);
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\"]\n", config, StringComparison.Ordinal);
        Assert.Contains("  sandbox_image = \"p:1\"\n", config, StringComparison.Ordinal);
        Assert.Contains("SystemdCgroup = false\n", config, StringComparison.Ordinal);
        Assert.DoesNotContain("'io.containerd.cri.v1", config, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(ContainerdConfigSchema.V3, "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'nvidia']")]
    [InlineData(ContainerdConfigSchema.V2, "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.\"nvidia\"]")]
    public void Extra_runtimes_are_runc_v2_with_their_binary_and_the_cgroup_driver(ContainerdConfigSchema schema, string table)
    {
        var config = ContainerdConfigWriter.Write(new ContainerdConfigOptions
        {
            DataDir = "/d",
            Schema = schema,
            SystemdCgroup = true,
            Runtimes = [new ContainerdRuntime("nvidia", "/usr/bin/nvidia-container-runtime")],
            Imports = ["/d/agent/etc/containerd/config.toml.d/*.toml"],
        }, NoRegistries);
        SeedExamplesTests.AssertValidToml(config);
        Assert.Contains($"{table}\n  runtime_type = \"io.containerd.runc.v2\"\n\n{table[..^1]}.options]\n  BinaryName = \"/usr/bin/nvidia-container-runtime\"\n  SystemdCgroup = true\n", config, StringComparison.Ordinal);
        Assert.Contains("imports = [\"/d/agent/etc/containerd/config.toml.d/*.toml\"]\n", config, StringComparison.Ordinal);
    }

    [Fact]
    public void Nvidia_runtimes_are_found_on_PATH_with_the_toolkit_directory_first()
    {
        var toolkit = Directory.CreateDirectory(Path.Combine(_dir, "toolkit")).FullName;
        var bin = Directory.CreateDirectory(Path.Combine(_dir, "bin")).FullName;
        var other = Directory.CreateDirectory(Path.Combine(_dir, "other")).FullName;
        Executable(Path.Combine(toolkit, "nvidia-container-runtime"));
        Executable(Path.Combine(bin, "nvidia-container-runtime"));
        Executable(Path.Combine(bin, "nvidia-container-runtime.cdi"));
        File.WriteAllText(Path.Combine(bin, "nvidia-container-runtime-experimental"), "not executable");
        Executable(Path.Combine(other, "nvidia-container-runtime-experimental"));

        var runtimes = ContainerdHostProbe.DetectNvidiaRuntimes($"{bin}:{other}", toolkit);

        Assert.Equal(
            [
                new ContainerdRuntime("nvidia", Path.Combine(toolkit, "nvidia-container-runtime")),
                new ContainerdRuntime("nvidia-cdi", Path.Combine(bin, "nvidia-container-runtime.cdi")),
                new ContainerdRuntime("nvidia-experimental", Path.Combine(other, "nvidia-container-runtime-experimental")),
            ],
            runtimes);
        Assert.Empty(ContainerdHostProbe.DetectNvidiaRuntimes(other + "-missing", Path.Combine(_dir, "none")));
    }

    [Theory]
    [InlineData("systemd", true, true)]
    [InlineData("systemd", false, false)]
    [InlineData("init", true, false)]
    public void Systemd_cgroup_driver_is_used_when_systemd_is_pid_1_on_cgroup_v2(string pid1, bool unified, bool expected)
    {
        Directory.CreateDirectory(Path.Combine(_dir, "proc", "1"));
        File.WriteAllText(Path.Combine(_dir, "proc", "1", "comm"), pid1 + "\n");
        Directory.CreateDirectory(Path.Combine(_dir, "sys", "fs", "cgroup"));
        if (unified)
        {
            File.WriteAllText(Path.Combine(_dir, "sys", "fs", "cgroup", "cgroup.controllers"), "cpu memory\n");
        }

        Assert.Equal(expected, ContainerdHostProbe.DetectSystemdCgroup(_dir));
    }

    private static void Executable(string path)
    {
        File.WriteAllText(path, "#!/bin/sh\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}
