using System.Diagnostics;
using Airlock.Node;

namespace Airlock.Tests.Node;

/// <summary>
/// The rendered version-2 config.toml is understood by the machine's real containerd 1.6: its own
/// <c>config dump</c> shows our values (a misspelt key would be dropped silently), and a daemon started on it
/// answers <c>ctr version</c>. The daemon runs in a temp dir with its own socket and is stopped by PID.
/// </summary>
public sealed class ContainerdStartTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("al-ctd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Rendered_v2_config_starts_stock_containerd_with_our_registry_sandbox_cgroup_and_drop_in_settings()
    {
        var (containerd, ctr, socket) = Tools();
        var options = Options(socket) with
        {
            SystemdCgroup = true,
            Runtimes = [new ContainerdRuntime("nvidia", "/usr/local/nvidia/toolkit/nvidia-container-runtime")],
        };
        var registries = Registries();
        var plan = await ContainerdRenderer.PlanAsync(registries, options, disableDefaultEndpoint: false, CancellationToken.None);
        await ContainerdRenderer.ApplyAsync(plan, CancellationToken.None);
        var dropIn = Path.Combine(options.ContainerdDir, "config.toml.d", "gc.toml");
        Directory.CreateDirectory(Path.GetDirectoryName(dropIn)!);
        await File.WriteAllTextAsync(dropIn, "version = 2\n[plugins.\"io.containerd.gc.v1.scheduler\"]\n  deletion_threshold = 7\n");
        var config = Path.Combine(options.ContainerdDir, "config.toml");

        var (code, dump) = await RunAsync(containerd, ["--config", config, "config", "dump"]);
        Assert.True(code == 0, dump);
        Assert.Contains($"config_path = \"{options.CertsDir}\"", dump, StringComparison.Ordinal);
        Assert.Contains("sandbox_image = \"registry.example.com/pause:3.9\"", dump, StringComparison.Ordinal);
        Assert.Contains("SystemdCgroup = true", dump, StringComparison.Ordinal);
        Assert.Contains("snapshotter = \"overlayfs\"", dump, StringComparison.Ordinal);
        Assert.Contains("BinaryName = \"/usr/local/nvidia/toolkit/nvidia-container-runtime\"", dump, StringComparison.Ordinal);
        Assert.Contains("deletion_threshold = 7", dump, StringComparison.Ordinal);
        Assert.Contains("username = \"user\"", dump, StringComparison.Ordinal);

        await StartAndCheckCriAsync(containerd, ctr, config, socket);
    }

    [Fact]
    public async Task Config_rendered_from_a_config_toml_tmpl_over_the_base_starts_stock_containerd_with_cri()
    {
        // The imports glob matches nothing here: containerd must start all the same.
        var (containerd, ctr, socket) = Tools();
        var options = Options(socket);
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
        await ContainerdRenderer.ApplyAsync(await ContainerdRenderer.PlanAsync(Registries(), options, disableDefaultEndpoint: false, CancellationToken.None), CancellationToken.None);
        var config = Path.Combine(options.ContainerdDir, "config.toml");
        Assert.Contains("# registry registry.example.com has auth: yes", await File.ReadAllTextAsync(config), StringComparison.Ordinal);

        var (code, dump) = await RunAsync(containerd, ["--config", config, "config", "dump"]);
        Assert.True(code == 0, dump);
        Assert.Contains("BinaryName = \"/usr/local/bin/custom-runtime\"", dump, StringComparison.Ordinal);
        Assert.Contains("deletion_threshold = 1", dump, StringComparison.Ordinal);
        Assert.Contains("sandbox_image = \"registry.example.com/pause:3.9\"", dump, StringComparison.Ordinal);
        Assert.Contains($"config_path = \"{options.CertsDir}\"", dump, StringComparison.Ordinal);
        Assert.Contains("username = \"user\"", dump, StringComparison.Ordinal);

        await StartAndCheckCriAsync(containerd, ctr, config, socket);
    }

    /// <summary>Starts containerd on <paramref name="config"/>, waits for <c>ctr version</c>, checks the CRI plugin loaded, stops it by PID.</summary>
    private static async Task StartAndCheckCriAsync(string containerd, string ctr, string config, string socket)
    {
        using var daemon = new Process
        {
            StartInfo = new ProcessStartInfo(containerd) { ArgumentList = { "--config", config }, RedirectStandardError = true, RedirectStandardOutput = true },
        };
        var output = new System.Text.StringBuilder();
        daemon.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        daemon.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        daemon.Start();
        daemon.BeginErrorReadLine();
        daemon.BeginOutputReadLine();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            var version = (Code: -1, Output: string.Empty);
            while (DateTime.UtcNow < deadline && !daemon.HasExited)
            {
                if (File.Exists(socket))
                {
                    version = await RunAsync(ctr, ["--address", socket, "version"]);
                    if (version.Code == 0)
                    {
                        break;
                    }
                }

                await Task.Delay(200);
            }

            string daemonLog;
            lock (output)
            {
                daemonLog = output.ToString();
            }

            Assert.True(version.Code == 0, $"ctr version failed: {version.Output}\ncontainerd log:\n{daemonLog}");
            Assert.Contains("Server:", version.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("failed to load TOML", daemonLog, StringComparison.Ordinal);

            // The CRI plugin took the rendered settings (it would report "error" on a config it cannot use).
            var plugins = await RunAsync(ctr, ["--address", socket, "plugins", "ls"]);
            var cri = plugins.Output.Split('\n').FirstOrDefault(l => l.Contains("io.containerd.grpc.v1", StringComparison.Ordinal) && l.Contains(" cri ", StringComparison.Ordinal));
            Assert.True(cri is not null && cri.TrimEnd().EndsWith("ok", StringComparison.Ordinal), $"{plugins.Output}\ncontainerd log:\n{daemonLog}");
        }
        finally
        {
            if (!daemon.HasExited)
            {
                Process.GetProcessById(daemon.Id).Kill();
                await daemon.WaitForExitAsync();
            }
        }
    }

    private (string Containerd, string Ctr, string Socket) Tools()
    {
        var containerd = Which("containerd");
        var ctr = Which("ctr");
        Assert.True(containerd is not null && ctr is not null, "containerd and ctr must be installed (test.sh installs them)");
        return (containerd!, ctr!, Path.Combine(_dir, "c.sock"));
    }

    /// <summary>A version-2 config for containerd in this test's temp dir, with the CLI's drop-in glob.</summary>
    private ContainerdConfigOptions Options(string socket)
    {
        var dataDir = Path.Combine(_dir, "data");
        return new ContainerdConfigOptions
        {
            DataDir = dataDir,
            Schema = ContainerdConfigSchema.V2,
            Root = Path.Combine(_dir, "root"),
            State = Path.Combine(_dir, "state"),
            GrpcAddress = socket,
            SandboxImage = "registry.example.com/pause:3.9",
            Imports = [Path.Combine(dataDir, "agent", "etc", "containerd", "config.toml.d", "*.toml")],
        };
    }

    private static RegistriesFile Registries() =>
        RegistriesFileReader.Parse("configs:\n  registry.example.com:\n    auth:\n      username: user\n      password: pass\n", "registries.yaml").File;

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
