using System.Diagnostics;
using Airlock.Node;
using Airlock.Tests.Node.Containerd;

namespace Airlock.Tests.Node;

/// <summary>
/// The rendered version-2 config.toml is understood by the machine's real containerd 1.6: its own
/// <c>config dump</c> shows our values (a misspelt key would be dropped silently), and a daemon started on it
/// (<see cref="ContainerdProcess"/>: temp dir, own socket, stopped by PID) serves with the CRI plugin loaded.
/// </summary>
public sealed class ContainerdStartTests
{
    [Fact]
    public async Task Rendered_v2_config_starts_stock_containerd_with_our_registry_sandbox_cgroup_and_drop_in_settings()
    {
        var containerd = Which("containerd");
        Assert.True(containerd is not null && Which("ctr") is not null, "containerd and ctr must be installed (test.sh installs them)");
        var daemon = ContainerdProcess.OnConfig(async locations =>
        {
            var dataDir = Path.Combine(locations.RootPath, "data");
            var options = new ContainerdConfigOptions
            {
                DataDir = dataDir,
                Schema = ContainerdConfigSchema.V2,
                Root = locations.Root,
                State = locations.State,
                GrpcAddress = locations.Address,
                SandboxImage = "registry.example.com/pause:3.9",
                SystemdCgroup = true,
                Imports = [Path.Combine(dataDir, "agent", "etc", "containerd", "config.toml.d", "*.toml")],
                Runtimes = [new ContainerdRuntime("nvidia", "/usr/local/nvidia/toolkit/nvidia-container-runtime")],
            };
            var (registries, _) = RegistriesFileReader.Parse("configs:\n  registry.example.com:\n    auth:\n      username: user\n      password: pass\n", "registries.yaml");
            var plan = await ContainerdRenderer.PlanAsync(registries, options, disableDefaultEndpoint: false, CancellationToken.None);
            await ContainerdRenderer.ApplyAsync(plan, CancellationToken.None);
            var dropIn = Path.Combine(options.ContainerdDir, "config.toml.d", "gc.toml");
            Directory.CreateDirectory(Path.GetDirectoryName(dropIn)!);
            await File.WriteAllTextAsync(dropIn, "version = 2\n[plugins.\"io.containerd.gc.v1.scheduler\"]\n  deletion_threshold = 7\n");
            var config = Path.Combine(options.ContainerdDir, "config.toml");

            var (code, dump) = await RunAsync(containerd!, ["--config", config, "config", "dump"]);
            Assert.True(code == 0, dump);
            Assert.Contains($"config_path = \"{options.CertsDir}\"", dump, StringComparison.Ordinal);
            Assert.Contains("sandbox_image = \"registry.example.com/pause:3.9\"", dump, StringComparison.Ordinal);
            Assert.Contains("SystemdCgroup = true", dump, StringComparison.Ordinal);
            Assert.Contains("snapshotter = \"overlayfs\"", dump, StringComparison.Ordinal);
            Assert.Contains("BinaryName = \"/usr/local/nvidia/toolkit/nvidia-container-runtime\"", dump, StringComparison.Ordinal);
            Assert.Contains("deletion_threshold = 7", dump, StringComparison.Ordinal);
            Assert.Contains("username = \"user\"", dump, StringComparison.Ordinal);
            return config;
        });

        await AssertServesWithCriAsync(daemon);
    }

    [Fact]
    public async Task Config_rendered_from_a_config_toml_tmpl_over_the_base_starts_stock_containerd_with_cri()
    {
        var containerd = Which("containerd");
        Assert.True(containerd is not null, "containerd must be installed (test.sh installs it)");
        var daemon = ContainerdProcess.OnConfig(async locations =>
        {
            // The imports glob matches nothing here: containerd must start all the same.
            var dataDir = Path.Combine(locations.RootPath, "data");
            var options = new ContainerdConfigOptions
            {
                DataDir = dataDir,
                Schema = ContainerdConfigSchema.V2,
                Root = locations.Root,
                State = locations.State,
                GrpcAddress = locations.Address,
                SandboxImage = "registry.example.com/pause:3.9",
                Imports = [Path.Combine(dataDir, "agent", "etc", "containerd", "config.toml.d", "*.toml")],
            };
            Directory.CreateDirectory(options.ContainerdDir);
            await File.WriteAllTextAsync(Path.Combine(options.ContainerdDir, "config.toml.tmpl"), """
                {{ template "base" . }}
                # Add a custom runtime
                [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."custom"]
                  runtime_type = "io.containerd.runc.v2"
                [plugins."io.containerd.grpc.v1.cri".containerd.runtimes."custom".options]
                  BinaryName = {{ filepathjoin "/usr/local/bin" "custom-runtime" | printf "%q" }}
                  SystemdCgroup = {{ .SystemdCgroup }}
                {{- range $k, $v := .PrivateRegistryConfig.Configs }}
                # registry {{ $k }} has auth: {{ if $v.Auth }}yes{{ else }}no{{ end }}
                {{- end }}
                [plugins."io.containerd.gc.v1.scheduler"]
                  deletion_threshold = {{ len .PrivateRegistryConfig.Configs | printf "%d" }}
                """);
            var (registries, _) = RegistriesFileReader.Parse("configs:\n  registry.example.com:\n    auth:\n      username: user\n      password: pass\n", "registries.yaml");
            await ContainerdRenderer.ApplyAsync(await ContainerdRenderer.PlanAsync(registries, options, disableDefaultEndpoint: false, CancellationToken.None), CancellationToken.None);
            var config = Path.Combine(options.ContainerdDir, "config.toml");
            Assert.Contains("# registry registry.example.com has auth: yes", await File.ReadAllTextAsync(config), StringComparison.Ordinal);

            var (code, dump) = await RunAsync(containerd!, ["--config", config, "config", "dump"]);
            Assert.True(code == 0, dump);
            Assert.Contains("BinaryName = \"/usr/local/bin/custom-runtime\"", dump, StringComparison.Ordinal);
            Assert.Contains("deletion_threshold = 1", dump, StringComparison.Ordinal);
            Assert.Contains("sandbox_image = \"registry.example.com/pause:3.9\"", dump, StringComparison.Ordinal);
            Assert.Contains($"config_path = \"{options.CertsDir}\"", dump, StringComparison.Ordinal);
            Assert.Contains("username = \"user\"", dump, StringComparison.Ordinal);
            return config;
        });

        await AssertServesWithCriAsync(daemon);
    }

    /// <summary>
    /// Every registries.yaml of the K3s private registry guide (seeds/004, copied verbatim in
    /// <see cref="SeedExamplesTests"/>), rendered for containerd 1.6, is a config containerd starts on with the
    /// CRI plugin (which owns the registry settings) loaded.
    /// </summary>
    [Theory]
    [MemberData(nameof(SeedExamplesTests.Examples), MemberType = typeof(SeedExamplesTests))]
    public async Task Guide_example_rendered_for_containerd_1_6_starts_containerd_with_the_CRI_plugin(string name, string yaml)
    {
        var daemon = ContainerdProcess.OnConfig(async locations =>
        {
            var (registries, _) = RegistriesFileReader.Parse(yaml, name + ".yaml");
            var options = new ContainerdConfigOptions
            {
                DataDir = Path.Combine(locations.RootPath, "data"),
                Schema = ContainerdConfigSchema.V2,
                Root = locations.Root,
                State = locations.State,
                GrpcAddress = locations.Address,
            };
            await ContainerdRenderer.ApplyAsync(await ContainerdRenderer.PlanAsync(registries, options, disableDefaultEndpoint: false, CancellationToken.None), CancellationToken.None);
            Assert.NotEmpty(Directory.EnumerateFiles(options.CertsDir, "hosts.toml", SearchOption.AllDirectories));
            return Path.Combine(options.ContainerdDir, "config.toml");
        });

        await AssertServesWithCriAsync(daemon);
    }

    private static async Task AssertServesWithCriAsync(ContainerdProcess daemon)
    {
        try
        {
            await daemon.InitializeAsync();
            var log = daemon.RecentOutput;
            Assert.DoesNotContain("failed to load TOML", log, StringComparison.Ordinal);

            // The CRI plugin took the rendered settings (it would report "error" on a config it cannot use).
            var (code, plugins) = await daemon.CtrAsync(["plugins", "ls"]);
            Assert.True(code == 0, plugins);
            var cri = plugins.Split('\n').FirstOrDefault(l => l.Contains("io.containerd.grpc.v1", StringComparison.Ordinal) && l.Contains(" cri ", StringComparison.Ordinal));
            Assert.True(cri is not null && cri.TrimEnd().EndsWith("ok", StringComparison.Ordinal), $"{plugins}\ncontainerd log:\n{daemon.RecentOutput}");
        }
        finally
        {
            await daemon.DisposeAsync();
        }
    }

    private static string? Which(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Concat(["/usr/sbin", "/sbin", "/usr/bin"])
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    private static async Task<(int Code, string Output)> RunAsync(string file, string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
