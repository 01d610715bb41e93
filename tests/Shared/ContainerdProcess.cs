using System.Globalization;
using Airlock.Node.Containerd;

namespace Airlock.Testing;

/// <summary>Where a fixture's containerd keeps everything, for a config.toml written by someone else.</summary>
public sealed record ContainerdLocations(string RootPath)
{
    public string Root => Path.Combine(RootPath, "root");

    public string State => Path.Combine(RootPath, "state");

    /// <summary>The gRPC socket; the CRI services are served on it too when the CRI plugin is on.</summary>
    public string Address => Path.Combine(RootPath, "containerd.sock");
}

/// <summary>
/// Debian's containerd 1.6 with its own root, state, socket and runc root in a temp folder: by default with the
/// CRI plugin disabled (ctr-only tests start faster without it), or on a config.toml the test supplies (e.g.
/// the one <c>airlock registries render</c> wrote). Every <c>ctr</c> call goes to this
/// daemon's socket in this fixture's own namespace. Stopping removes its tasks and containers, stops
/// the daemon by PID, kills only the shims started for this daemon's socket, then unmounts and deletes
/// everything under the temp root.
/// </summary>
/// <remarks>
/// The one containerd fixture of the unit and interop suites (linked into both). Started with
/// <see cref="StartAsync(CancellationToken)"/>, or by xunit as a class fixture (<see cref="IAsyncLifetime"/>):
/// that one works in containerd's <c>k8s.io</c> namespace, where Airlock's own client imports as K3s does.
/// </remarks>
public sealed class ContainerdProcess : IAsyncLifetime, IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    /// <summary>K3s's (and so Airlock's) CRI streaming port, fixed: a second CRI containerd on it dies at start.</summary>
    private const string FixedStreamPort = "stream_server_port = \"10010\"";

    private readonly Func<ContainerdLocations, Task<string>> _writeConfig;
    private readonly IReadOnlyList<string>? _launcher;
    private readonly TempRoot _root;
    private ServerProcess? _server;
    private bool _disposed;

    /// <summary>A class fixture: its own config with CRI off, in the <c>k8s.io</c> namespace; xunit starts and stops it.</summary>
    public ContainerdProcess()
        : this(WriteOwnConfigAsync, null, ContainerdClient.DefaultNamespace)
    {
    }

    private ContainerdProcess(Func<ContainerdLocations, Task<string>> writeConfig, IReadOnlyList<string>? launcher, string? @namespace)
    {
        _writeConfig = writeConfig;
        _launcher = launcher;
        // Short prefix: the socket path must fit in sockaddr_un's 108 bytes.
        _root = TempRoot.Create("airlock-ctrd-");
        Snapshotter = "overlayfs";
        Namespace = @namespace ?? $"airlock-{Guid.NewGuid().ToString("N")[..8]}";
    }

    /// <summary>The containerd namespace this fixture's images and containers live in.</summary>
    public string Namespace { get; }

    /// <summary><c>overlayfs</c> where the kernel allows it (it does in this sandbox), otherwise <c>native</c>.</summary>
    public string Snapshotter { get; private set; }

    public string Address => Locations.Address;

    /// <summary>Where root, state and socket are, e.g. to render a config.toml for them.</summary>
    public ContainerdLocations Locations => new(_root.Path);

    /// <summary>The temp folder holding root, state, socket, runc root and certs.d.</summary>
    public string RootPath => _root.Path;

    public int Pid => Server.Pid;

    /// <summary>The last lines containerd wrote (for failure messages).</summary>
    public string RecentOutput => _server?.RecentOutput ?? string.Empty;

    private ServerProcess Server => _server ?? throw new InvalidOperationException("containerd has not been started");

    /// <summary>
    /// The runc state folder for containers this fixture runs, kept off the machine's /run/containerd/runc
    /// (as are the IO FIFOs; only the shims' sockets must live in containerd 1.6's fixed /run/containerd/s).
    /// </summary>
    public string RuncRoot => Path.Combine(_root.Path, "runc");

    public static async Task<ContainerdProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        var containerd = new ContainerdProcess(WriteOwnConfigAsync, null, null);
        await containerd.StartCoreAsync(cancellationToken);
        return containerd;
    }

    /// <summary>
    /// Starts containerd on the config.toml <paramref name="writeConfig"/> writes (and returns the path of); the
    /// config must put root, state and the gRPC socket where <see cref="ContainerdLocations"/> says, so the
    /// fixture can reach and clean up the daemon. <paramref name="launcher"/> is a command prefix that ends by
    /// exec'ing containerd in the same process (e.g. the interop suite's <c>NetworkNamespace.Exec</c>), so the PID stays containerd's.
    /// A fixed CRI streaming port in the config (K3s's 10010) is replaced by an ephemeral one: containerd 1.6 exits
    /// ("Failed to run CRI service") when the port is taken, e.g. by another test's containerd on this machine.
    /// </summary>
    public static async Task<ContainerdProcess> StartAsync(Func<ContainerdLocations, Task<string>> writeConfig, IReadOnlyList<string>? launcher = null,
        CancellationToken cancellationToken = default)
    {
        var containerd = OnConfig(writeConfig, launcher);
        await containerd.StartCoreAsync(cancellationToken);
        return containerd;
    }

    /// <summary>As <see cref="StartAsync(Func{ContainerdLocations, Task{string}}, IReadOnlyList{string}?, CancellationToken)"/>, started later by <see cref="InitializeAsync"/>.</summary>
    public static ContainerdProcess OnConfig(Func<ContainerdLocations, Task<string>> writeConfig, IReadOnlyList<string>? launcher = null)
    {
        ArgumentNullException.ThrowIfNull(writeConfig);
        return new ContainerdProcess(writeConfig, launcher, null);
    }

    /// <summary>Starts the daemon (xunit calls this for a class fixture).</summary>
    public Task InitializeAsync() => StartCoreAsync(CancellationToken.None);

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    /// <summary>A client of this daemon's gRPC API (Airlock's own), by default in <c>k8s.io</c>.</summary>
    public ContainerdClient Connect(string @namespace = ContainerdClient.DefaultNamespace) => ContainerdClient.Connect(Address, @namespace);

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        try
        {
            var configPath = await UnpinStreamPortAsync(await _writeConfig(Locations));
            List<string> command = [.. _launcher ?? [], "containerd", "--config", configPath];
            _server = ServerProcess.Start(command[0], command.Skip(1));
            await WaitUntilServingAsync(cancellationToken);
            Snapshotter = await ChooseSnapshotterAsync(cancellationToken);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private static Task<string> WriteOwnConfigAsync(ContainerdLocations locations)
    {
        var configPath = Path.Combine(locations.RootPath, "config.toml");
        File.WriteAllText(configPath, $"""
            version = 2
            root = "{locations.RootPath}/root"
            state = "{locations.RootPath}/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]

            [grpc]
              address = "{locations.RootPath}/containerd.sock"

            [ttrpc]
              address = "{locations.RootPath}/containerd.sock.ttrpc"

            [debug]
              level = "info"

            [metrics]
              address = ""

            [plugins."io.containerd.internal.v1.opt"]
              path = "{locations.RootPath}/opt"
            """);
        return Task.FromResult(configPath);
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

    /// <summary>Runs <c>ctr --address SOCK -n NAMESPACE ARGS</c>.</summary>
    public Task<ToolResult> CtrAsync(IEnumerable<string> arguments, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        RunCtrAsync(["--address", Address, "-n", Namespace, .. arguments], timeout, cancellationToken);

    /// <summary>
    /// Runs <c>ctr ARGS</c>. A <c>ctr run --rm</c> attached to the container (not <c>-d</c>) that exits 0 with no output at
    /// all is run again, at most twice: ctr can lose the whole output of a process that exits at once (its copy of the
    /// container's stdout races the exit; containerd issue 770 and later reports of the same), which failed a loaded full
    /// run once. A container that really prints nothing still prints nothing the third time, and its test fails.
    /// </summary>
    public static async Task<ToolResult> RunCtrAsync(IReadOnlyList<string> arguments, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var attached = arguments.Contains("run") && arguments.Contains("--rm") && !arguments.Contains("-d") && !arguments.Contains("--detach");
        for (var attempt = 1; ; attempt++)
        {
            var result = await Tool.RunAsync("ctr", arguments, timeout, cancellationToken: cancellationToken);
            if (!attached || result.ExitCode != 0 || result.Output.Length > 0 || attempt == 3)
            {
                return result;
            }
        }
    }

    /// <summary>
    /// Writes <c>certs.d/HOST/hosts.toml</c> pointing containerd at <paramref name="server"/> (pull and
    /// resolve), trusting <paramref name="caPath"/> when given, and returns the certs.d folder for
    /// <c>--hosts-dir</c>.
    /// </summary>
    public string WriteHostsDirectory(string host, Uri server, string? caPath = null)
    {
        var certsD = Path.Combine(_root.Path, "certs.d");
        var hostDirectory = Directory.CreateDirectory(Path.Combine(certsD, host)).FullName;
        var endpoint = server.GetLeftPart(UriPartial.Authority);
        var ca = caPath is null ? string.Empty : $"  ca = \"{caPath}\"\n";
        File.WriteAllText(Path.Combine(hostDirectory, "hosts.toml"), $"""
            server = "{endpoint}"

            [host."{endpoint}"]
              capabilities = ["pull", "resolve"]
            {ca}
            """);
        return certsD;
    }

    /// <summary>Pulls <paramref name="reference"/> through the hosts.toml in <paramref name="hostsDirectory"/> and unpacks it.</summary>
    public Task<ToolResult> PullAsync(string reference, string hostsDirectory, IEnumerable<string>? extraArguments = null,
        CancellationToken cancellationToken = default) =>
        CtrAsync(["images", "pull", "--hosts-dir", hostsDirectory, "--snapshotter", Snapshotter, .. extraArguments ?? [], reference],
            cancellationToken: cancellationToken);

    /// <summary>Runs the image's default command in a new container and removes it afterwards (<c>ctr run --rm</c>).</summary>
    public Task<ToolResult> RunAsync(string reference, CancellationToken cancellationToken = default) =>
        CtrAsync(["run", "--rm", .. RunOptions(), reference, NewContainerId()], TimeSpan.FromSeconds(60), cancellationToken);

    /// <summary>Starts <paramref name="command"/> in a new container and returns at once (<c>ctr run -d</c>); returns the container id.</summary>
    public async Task<string> StartDetachedAsync(string reference, IEnumerable<string> command, CancellationToken cancellationToken = default)
    {
        var id = NewContainerId();
        (await CtrAsync(["run", "-d", .. RunOptions(), reference, id, .. command], TimeSpan.FromSeconds(60), cancellationToken)).EnsureSuccess();
        return id;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_server is { HasExited: false })
        {
            await RemoveContainersAsync();
        }

        if (_server is not null)
        {
            await _server.StopAsync(TimeSpan.FromSeconds(10));
        }

        KillShimsOf(Address);
        var stuck = _root.UnmountAndDelete();
        RemoveNamespaceCgroups();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (stuck.Count > 0)
        {
            throw new InvalidOperationException($"could not unmount {string.Join(", ", stuck)}");
        }
    }

    private async Task WaitUntilServingAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            Server.EnsureRunning();
            if (File.Exists(Address))
            {
                var version = await Tool.RunAsync("ctr", ["--address", Address, "version"], TimeSpan.FromSeconds(10), cancellationToken: cancellationToken);
                if (version.Succeeded)
                {
                    return;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"containerd did not serve {Address} within {StartTimeout.TotalSeconds:0}s:\n{RecentOutput}");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    private async Task<string> ChooseSnapshotterAsync(CancellationToken cancellationToken)
    {
        var plugins = await CtrAsync(["plugins", "ls"], cancellationToken: cancellationToken);
        var overlayOk = plugins.Stdout.Split('\n').Any(line =>
            line.Contains("io.containerd.snapshotter.v1", StringComparison.Ordinal)
            && line.Contains(" overlayfs ", StringComparison.Ordinal)
            && line.TrimEnd().EndsWith(" ok", StringComparison.Ordinal));
        return overlayOk ? "overlayfs" : "native";
    }

    private async Task RemoveContainersAsync()
    {
        var timeout = TimeSpan.FromSeconds(15);
        var tasks = await CtrAsync(["tasks", "ls", "-q"], timeout);
        foreach (var task in Lines(tasks.Stdout))
        {
            await CtrAsync(["tasks", "kill", "-s", "SIGKILL", task], timeout);
            await CtrAsync(["tasks", "rm", "-f", task], timeout);
        }

        var containers = await CtrAsync(["containers", "ls", "-q"], timeout);
        foreach (var container in Lines(containers.Stdout))
        {
            await CtrAsync(["containers", "rm", container], timeout);
        }
    }

    /// <summary>
    /// Shims outlive containerd by design; the ones this daemon started carry its socket in their
    /// command line (<c>-address SOCK</c>), which is how they are told apart from any other
    /// containerd's shims on the machine.
    /// </summary>
    public IReadOnlyList<int> OwnShimPids() => ShimPidsOf(Address);

    /// <summary>The shims started by the containerd serving <paramref name="address"/> (e.g. one a test had Airlock start).</summary>
    public static IReadOnlyList<int> ShimPidsOf(string address)
    {
        var pids = new List<int>();
        foreach (var procEntry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(procEntry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string[] commandLine;
            try
            {
                commandLine = File.ReadAllText(Path.Combine(procEntry, "cmdline")).Split('\0');
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // exited meanwhile
            }

            if (commandLine[0].Contains("containerd-shim", StringComparison.Ordinal) && commandLine.Contains(address, StringComparer.Ordinal))
            {
                pids.Add(pid);
            }
        }

        return pids;
    }

    /// <summary>Kills (SIGKILL, by PID) only the shims of the containerd serving <paramref name="address"/>.</summary>
    public static void KillShimsOf(string address)
    {
        foreach (var pid in ShimPidsOf(address))
        {
            _ = Signals.Send(pid, Signals.Kill);
        }
    }

    /// <summary>runc puts containers in cgroup <c>/NAMESPACE/ID</c>; the empty namespace folders stay behind otherwise.</summary>
    private void RemoveNamespaceCgroups()
    {
        if (!Directory.Exists("/sys/fs/cgroup"))
        {
            return;
        }

        foreach (var controller in Directory.EnumerateDirectories("/sys/fs/cgroup"))
        {
            var cgroup = Path.Combine(controller, Namespace);
            try
            {
                if (Directory.Exists(cgroup))
                {
                    Directory.Delete(cgroup);
                }
            }
            catch (IOException)
            {
                // Still in use or not empty: leave it rather than guess.
            }
        }
    }

    private static string NewContainerId() => $"t-{Guid.NewGuid().ToString("N")[..12]}";

    private string[] RunOptions() =>
        ["--snapshotter", Snapshotter, "--runc-root", RuncRoot, "--fifo-dir", Path.Combine(_root.Path, "fifo")];

    private static IEnumerable<string> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
