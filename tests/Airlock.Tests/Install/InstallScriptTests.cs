using System.Diagnostics;

namespace Airlock.Tests.Install;

/// <summary>
/// install.sh into a temporary root, the way packagers and these tests use INSTALL_AIRLOCK_ROOT, with the real airlock
/// (the build under test, behind a one-line launcher) answering the installer's questions. systemctl is a stand-in on
/// PATH that records its calls and says whether systemd runs, so no test touches the machine's own services.
/// </summary>
public sealed class InstallScriptTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("airlock-install-").FullName;
    private readonly string _tools = Directory.CreateTempSubdirectory("airlock-install-tools-").FullName;
    private readonly string _binary;

    public InstallScriptTests()
    {
        _binary = Path.Combine(_tools, "airlock");
        WriteExecutable(_binary, $"#!/bin/sh\nexec dotnet \"{Path.Combine(AppContext.BaseDirectory, "airlock.dll")}\" \"$@\"\n");
        FakeSystemctl("running");
    }

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_tools, recursive: true);
    }

    private string SystemctlLog => Path.Combine(_tools, "systemctl.log");

    private static void WriteExecutable(string path, string content)
    {
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>A systemctl that logs its arguments, reports <paramref name="state"/>, and fails <paramref name="failing"/>.</summary>
    private void FakeSystemctl(string state, string? failing = null)
    {
        var bin = Directory.CreateDirectory(Path.Combine(_tools, "bin")).FullName;
        WriteExecutable(Path.Combine(bin, "systemctl"), $$"""
            #!/bin/sh
            echo "$*" >> "{{SystemctlLog}}"
            if [ "$1" = is-system-running ]; then echo {{state}}; [ {{state}} = running ]; exit; fi
            [ "$1" != "{{failing ?? "-"}}" ]
            """);
    }

    private string[] SystemctlCalls => File.Exists(SystemctlLog) ? File.ReadAllLines(SystemctlLog) : [];

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

        start.Environment["PATH"] = Path.Combine(_tools, "bin") + ":" + start.Environment["PATH"];

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(120_000), "install.sh did not finish");
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
    public void Without_a_running_systemd_it_refuses_before_writing_anything_and_says_what_to_do()
    {
        FakeSystemctl("offline");

        var (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_SKIP_ENABLE", "false"), ("INSTALL_AIRLOCK_SKIP_START", "false")), "agent", "--watch", "false");

        Assert.NotEqual(0, code);
        Assert.Contains("[ERROR] systemd is not running here (systemctl says: offline", output, StringComparison.Ordinal);
        Assert.Contains("INSTALL_AIRLOCK_INIT=openrc", output, StringComparison.Ordinal);
        Assert.Contains("run it by hand: /usr/local/bin/airlock agent --watch false", output, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_root));
        Assert.DoesNotContain(SystemctlCalls, c => c != "is-system-running");
    }

    [Fact]
    public void Without_a_running_systemd_skipping_enable_and_start_installs_for_running_by_hand_with_an_uninstaller()
    {
        FakeSystemctl("offline");

        var (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_SKIP_ENABLE", "true"), ("INSTALL_AIRLOCK_SKIP_START", "true")), "registry");

        Assert.True(code == 0, output);
        Assert.Contains("run it with your service manager, or by hand: /usr/local/bin/airlock registry", output, StringComparison.Ordinal);
        Assert.True(File.Exists(At("/etc/systemd/system/airlock-registry.service")));
        Assert.True(File.Exists(At("/usr/local/bin/airlock-registry-uninstall.sh")));
    }

    [Fact]
    public void On_a_running_systemd_it_enables_and_starts_and_a_failed_start_leaves_an_uninstaller_and_says_where_to_look()
    {
        var (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_SKIP_ENABLE", "false"), ("INSTALL_AIRLOCK_SKIP_START", "false")), "registry");
        Assert.True(code == 0, output);
        Assert.Equal(["is-system-running", "daemon-reload", "enable airlock-registry", "restart airlock-registry"], SystemctlCalls);

        File.Delete(SystemctlLog);
        FakeSystemctl("running", failing: "restart");
        (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_SKIP_ENABLE", "false"), ("INSTALL_AIRLOCK_SKIP_START", "false")), "registry");
        Assert.NotEqual(0, code);
        Assert.Contains("[ERROR] airlock-registry did not start; see journalctl -u airlock-registry", output, StringComparison.Ordinal);
        Assert.True(File.Exists(At("/usr/local/bin/airlock-registry-uninstall.sh")));
    }

    [Fact]
    public void A_verb_the_binary_does_not_have_is_refused_by_asking_the_binary()
    {
        // An older airlock that has no "server" yet, answering as airlock does.
        var old = Path.Combine(_tools, "old-airlock");
        WriteExecutable(old, """
            #!/bin/sh
            [ "$1" = --version ] && { echo 1.0.0; exit 0; }
            [ "$1" = server ] && { echo "airlock: 'airlock' has no command 'server' (commands: check, version, registry, agent)" >&2; echo "Run 'airlock --help' for usage." >&2; exit 2; }
            exit 0
            """);

        var (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_BINARY", old)), "server", "--token", "x");

        Assert.NotEqual(0, code);
        Assert.Contains($"[ERROR] {old} has no \"server\" service to install: 'airlock' has no command 'server' (commands: check, version, registry, agent)", output, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_root));

        // The real binary is asked the same way: a verb it has installs.
        (code, output) = Run(Script, Env(), "mirror", "--mirror-address", "127.0.0.1:5100");
        Assert.True(code == 0, output);
        Assert.Contains("ExecStart=/usr/local/bin/airlock mirror --mirror-address 127.0.0.1:5100", File.ReadAllText(At("/etc/systemd/system/airlock-mirror.service")), StringComparison.Ordinal);
    }

    [Fact]
    public void Exec_flags_are_checked_with_the_binary_before_a_unit_is_written()
    {
        var (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_EXEC", "agent --imagesdir /var/lib/rancher/k3s/agent/images")));

        Assert.NotEqual(0, code);
        Assert.Contains("[ERROR] airlock agent refuses the flags \"--imagesdir /var/lib/rancher/k3s/agent/images\"", output, StringComparison.Ordinal);
        Assert.Contains("did you mean --images-dir?", output, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_root));

        (code, output) = Run(Script, Env(("INSTALL_AIRLOCK_EXEC", "agent --containerd-version 9")));
        Assert.NotEqual(0, code);
        Assert.Contains("'9'", output, StringComparison.Ordinal);
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
