using System.Diagnostics;

namespace Airlock.Tests.Install;

/// <summary>install.sh into a temporary root, the way packagers and these tests use INSTALL_AIRLOCK_ROOT.</summary>
public sealed class InstallScriptTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("airlock-install-").FullName;
    private readonly string _binary;

    public InstallScriptTests()
    {
        _binary = Path.Combine(_root, "..", Path.GetFileName(_root) + "-airlock");
        File.WriteAllText(_binary, "#!/bin/sh\necho fake airlock\n");
    }

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        File.Delete(_binary);
    }

    private static string Script => Path.Combine(RepoRoot(), "install.sh");

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "install.sh")) && File.Exists(Path.Combine(dir.FullName, "Airlock.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (with install.sh) not found above " + AppContext.BaseDirectory);
    }

    private (int Code, string Output) Run(string script, Dictionary<string, string> env, params string[] args)
    {
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var key in start.Environment.Keys.Where(k => k.Contains("PROXY", StringComparison.OrdinalIgnoreCase) || k.StartsWith("AIRLOCK_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }

        foreach (var (key, value) in env)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(30_000), "install.sh did not finish");
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private Dictionary<string, string> Env(params (string Key, string Value)[] extra)
    {
        var env = new Dictionary<string, string>
        {
            ["INSTALL_AIRLOCK_SKIP_DOWNLOAD"] = "true",
            ["INSTALL_AIRLOCK_ROOT"] = _root,
            ["INSTALL_AIRLOCK_BINARY"] = _binary,
            ["INSTALL_AIRLOCK_INIT"] = "systemd",
        };
        foreach (var (key, value) in extra)
        {
            env[key] = value;
        }

        return env;
    }

    private string At(string path) => Path.Combine(_root, path.TrimStart('/'));

    [Fact]
    public void Registry_install_writes_binary_unit_env_file_with_proxies_and_uninstaller()
    {
        var (code, output) = Run(Script, Env(("HTTPS_PROXY", "http://proxy.example:3128"), ("NO_PROXY", "127.0.0.0/8"), ("CONTAINERD_HTTP_PROXY", "http://p2:3128")),
            "registry", "--listen", "0.0.0.0:5000");
        Assert.True(code == 0, output);

        Assert.True(File.Exists(At("/usr/local/bin/airlock")));
        var unit = File.ReadAllText(At("/etc/systemd/system/airlock-registry.service"));
        Assert.Contains("ExecStart=/usr/local/bin/airlock registry --listen 0.0.0.0:5000", unit, StringComparison.Ordinal);
        Assert.Contains("EnvironmentFile=-/etc/systemd/system/airlock-registry.service.env", unit, StringComparison.Ordinal);
        Assert.Contains("Type=exec", unit, StringComparison.Ordinal);

        var env = File.ReadAllLines(At("/etc/systemd/system/airlock-registry.service.env"));
        Assert.Contains("HTTPS_PROXY=http://proxy.example:3128", env);
        Assert.Contains("NO_PROXY=127.0.0.0/8", env);
        Assert.Contains("CONTAINERD_HTTP_PROXY=http://p2:3128", env);
        Assert.DoesNotContain(env, line => line.StartsWith("INSTALL_AIRLOCK_", StringComparison.Ordinal));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(At("/etc/systemd/system/airlock-registry.service.env")));

        Assert.True(File.Exists(At("/usr/local/bin/airlock-registry-uninstall.sh")));
    }

    [Fact]
    public void Agent_unit_notifies_readiness_and_keeps_shims_on_restart()
    {
        var (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_EXEC", "agent --registries /etc/airlock/registries.yaml")));
        Assert.True(code == 0, output);
        var unit = File.ReadAllText(At("/etc/systemd/system/airlock-agent.service"));
        Assert.Contains("Type=notify", unit, StringComparison.Ordinal);
        Assert.Contains("KillMode=process", unit, StringComparison.Ordinal);
        Assert.Contains("Delegate=yes", unit, StringComparison.Ordinal);
        Assert.Contains("ExecStart=/usr/local/bin/airlock agent --registries /etc/airlock/registries.yaml", unit, StringComparison.Ordinal);
    }

    [Fact]
    public void Openrc_service_is_written_when_asked()
    {
        var (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_INIT", "openrc")), "registry");
        Assert.True(code == 0, output);
        var service = File.ReadAllText(At("/etc/init.d/airlock-registry"));
        Assert.StartsWith("#!/sbin/openrc-run", service, StringComparison.Ordinal);
        Assert.Contains("command_args=\"registry\"", service, StringComparison.Ordinal);
        Assert.True(File.Exists(At("/etc/airlock/airlock-registry.env")));
    }

    [Fact]
    public void Uninstall_removes_what_install_wrote_but_keeps_the_data_dir()
    {
        Assert.Equal(0, Run(Script, Env(), "registry").Code);
        Directory.CreateDirectory(At("/var/lib/airlock/registry"));

        var (code, output) = Run(At("/usr/local/bin/airlock-registry-uninstall.sh"), new Dictionary<string, string> { ["INSTALL_AIRLOCK_ROOT"] = _root });
        Assert.True(code == 0, output);
        Assert.False(File.Exists(At("/etc/systemd/system/airlock-registry.service")));
        Assert.False(File.Exists(At("/etc/systemd/system/airlock-registry.service.env")));
        Assert.False(File.Exists(At("/usr/local/bin/airlock")));
        Assert.False(File.Exists(At("/usr/local/bin/airlock-registry-uninstall.sh")));
        Assert.True(Directory.Exists(At("/var/lib/airlock/registry")));
    }

    [Fact]
    public void Without_skip_download_it_refuses_and_explains_the_air_gap()
    {
        var env = Env();
        env.Remove("INSTALL_AIRLOCK_SKIP_DOWNLOAD");
        var (code, output) = Run(Script, env, "registry");
        Assert.NotEqual(0, code);
        Assert.Contains("INSTALL_AIRLOCK_SKIP_DOWNLOAD=true", output, StringComparison.Ordinal);
        Assert.False(File.Exists(At("/usr/local/bin/airlock")));
    }

    [Fact]
    public void An_unknown_verb_is_refused()
    {
        var (code, output) = Run(Script, Env(), "frobnicate");
        Assert.NotEqual(0, code);
        Assert.Contains("unknown service verb \"frobnicate\"", output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_generated_unit_passes_systemd_analyze_verify_when_available()
    {
        Assert.Equal(0, Run(Script, Env(), "registry").Code);
        var analyze = new[] { "/usr/bin/systemd-analyze", "/bin/systemd-analyze" }.FirstOrDefault(File.Exists);
        var unit = At("/etc/systemd/system/airlock-registry.service");
        var text = File.ReadAllText(unit);
        // Every line is a section, a comment, blank, or key=value: a structural check that runs everywhere.
        Assert.All(text.Split('\n'), line => Assert.True(line.Length == 0 || line[0] is '#' or '[' || line.Contains('=', StringComparison.Ordinal), line));
        if (analyze is not null)
        {
            var start = new ProcessStartInfo(analyze) { RedirectStandardError = true, RedirectStandardOutput = true };
            start.ArgumentList.Add("verify");
            start.ArgumentList.Add("--man=no");
            start.ArgumentList.Add(unit);
            using var process = Process.Start(start)!;
            var errors = process.StandardError.ReadToEnd();
            process.WaitForExit(30_000);
            // ExecStart points into the temp root's layout (/usr/local/bin/airlock), which may not exist on the host.
            Assert.DoesNotContain("Unknown key", errors, StringComparison.Ordinal);
            Assert.DoesNotContain("Unknown section", errors, StringComparison.Ordinal);
            Assert.DoesNotContain("Invalid", errors, StringComparison.Ordinal);
        }
    }
}
