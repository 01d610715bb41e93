using System.Diagnostics;
using System.Globalization;
using System.Text;
using Airlock.Node.Containerd;

namespace Airlock.Tests.Node.Containerd;

/// <summary>
/// A real containerd (Debian's 1.6) of its own: root, state and sockets in a temp dir, CRI off for speed — or
/// on a config.toml Airlock rendered (<see cref="OnConfig"/>).
/// Started once per test class, stopped by PID; shims it started are killed by PID, mounts under its
/// root are unmounted before the temp dir goes.
/// </summary>
public sealed class ContainerdDaemon : IAsyncLifetime
{
    /// <summary>K3s's (and so Airlock's) CRI streaming port, fixed: a second CRI containerd on it dies at start.</summary>
    private const string FixedStreamPort = "stream_server_port = \"10010\"";
    private readonly Func<ContainerdDaemon, Task<string>>? _writeConfig;
    private Process? _process;

    public ContainerdDaemon()
        : this(null)
    {
    }

    private ContainerdDaemon(Func<ContainerdDaemon, Task<string>>? writeConfig)
    {
        _writeConfig = writeConfig;
        // Unix socket paths are limited to 108 bytes: keep the temp dir short.
        Directory = System.IO.Directory.CreateTempSubdirectory("acd-").FullName;
        SocketPath = Path.Combine(Directory, "c.sock");
    }

    public string Directory { get; }

    /// <summary>
    /// A daemon to be started (<see cref="InitializeAsync"/>) on the config.toml <paramref name="writeConfig"/> writes
    /// and returns the path of, e.g. one rendered with <see cref="Root"/>, <see cref="State"/> and
    /// <see cref="SocketPath"/>. A fixed CRI streaming port in it (K3s's 10010) is replaced by an ephemeral one:
    /// containerd 1.6 exits ("Failed to run CRI service") when the port is taken, e.g. by another test's containerd
    /// on this machine. Nothing else is changed.
    /// </summary>
    public static ContainerdDaemon OnConfig(Func<ContainerdDaemon, Task<string>> writeConfig) => new(writeConfig);

    public string SocketPath { get; }

    public string LogPath => Path.Combine(Directory, "containerd.log");

    public string Root => Path.Combine(Directory, "root");

    public string State => Path.Combine(Directory, "state");

    /// <summary>What containerd wrote so far (for failure messages).</summary>
    public Task<string> LogAsync() => ReadLogAsync();

    public ContainerdClient Connect(string @namespace = ContainerdClient.DefaultNamespace) => ContainerdClient.Connect(SocketPath, @namespace);

    public async Task InitializeAsync()
    {
        var config = _writeConfig is null ? await WriteOwnConfigAsync() : await UnpinStreamPortAsync(await _writeConfig(this));

        var start = new ProcessStartInfo("containerd") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(config);
        _process = Process.Start(start) ?? throw new InvalidOperationException("containerd did not start");
        var log = new StreamWriter(LogPath, append: false) { AutoFlush = true };
        _process.OutputDataReceived += (_, e) => WriteLog(log, e.Data);
        _process.ErrorDataReceived += (_, e) => WriteLog(log, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        await using var client = Connect();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"containerd exited with {_process.ExitCode}: {await ReadLogAsync()}");
            }

            if (File.Exists(SocketPath))
            {
                try
                {
                    using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    await client.VersionAsync(attempt.Token);
                    return;
                }
                catch (Exception ex) when (ex is ContainerdException or OperationCanceledException && DateTime.UtcNow < deadline)
                {
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"containerd did not answer on {SocketPath}: {await ReadLogAsync()}");
            }

            await Task.Delay(50);
        }
    }

    private async Task<string> WriteOwnConfigAsync()
    {
        var config = Path.Combine(Directory, "config.toml");
        await File.WriteAllTextAsync(config, $"""
            version = 2
            root = "{Root}"
            state = "{State}"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]

            [grpc]
              address = "{SocketPath}"

            [ttrpc]
              address = "{Directory}/t.sock"

            [debug]
              address = "{Directory}/d.sock"
            """);
        return config;
    }

    private static async Task<string> UnpinStreamPortAsync(string configPath)
    {
        var config = await File.ReadAllTextAsync(configPath);
        if (config.Contains(FixedStreamPort, StringComparison.Ordinal))
        {
            await File.WriteAllTextAsync(configPath, config.Replace(FixedStreamPort, "stream_server_port = \"0\"", StringComparison.Ordinal));
        }

        return configPath;
    }

    /// <summary>Runs <c>ctr --address &lt;this socket&gt; -n &lt;namespace&gt; args…</c>; returns exit code and combined output.</summary>
    public Task<(int ExitCode, string Output)> CtrAsync(params string[] args) => CtrAsync(SocketPath, args);

    /// <summary>Runs <c>ctr --address <paramref name="socketPath"/> -n k8s.io args…</c> against any containerd.</summary>
    public static async Task<(int ExitCode, string Output)> CtrAsync(string socketPath, params string[] args)
    {
        var start = new ProcessStartInfo("ctr") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("--address");
        start.ArgumentList.Add(socketPath);
        start.ArgumentList.Add("-n");
        start.ArgumentList.Add(ContainerdClient.DefaultNamespace);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"ctr {string.Join(' ', args)} did not finish within 60 s");
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            Signal(_process.Id, "TERM");
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }

        _process?.Dispose();
        KillShims(SocketPath);
        UnmountUnder(Directory);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // A mount that would not go away keeps its files; leaving a temp dir beats failing the class.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private async Task<string> ReadLogAsync()
    {
        await Task.Delay(100);
        using var reader = new StreamReader(new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        return await reader.ReadToEndAsync();
    }

    private static void WriteLog(StreamWriter log, string? line)
    {
        if (line is not null)
        {
            lock (log)
            {
                log.WriteLine(line);
            }
        }
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    // Shims are started with "-address <our socket>"; only those are ours.
    internal static void KillShims(string socketPath)
    {
        foreach (var dir in System.IO.Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            string cmdline;
            try
            {
                cmdline = Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(dir, "cmdline"))).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            if (cmdline.Contains("containerd-shim", StringComparison.Ordinal) && cmdline.Contains(" " + socketPath + " ", StringComparison.Ordinal))
            {
                Signal(pid, "KILL");
            }
        }
    }

    internal static void UnmountUnder(string root)
    {
        // mountinfo field 5 is the mount point (octal-escaped); deepest first so nested mounts go before parents.
        var mountPoints = File.ReadAllLines("/proc/self/mountinfo")
            .Select(line => line.Split(' ')[4].Replace("\\040", " ", StringComparison.Ordinal))
            .Where(point => point.StartsWith(root + "/", StringComparison.Ordinal))
            .OrderByDescending(point => point.Length);
        foreach (var point in mountPoints)
        {
            using var umount = Process.Start("umount", ["-l", point]);
            umount.WaitForExit();
        }
    }
}
