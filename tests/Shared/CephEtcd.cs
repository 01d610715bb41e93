using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Airlock.Testing;

/// <summary>
/// The real engines of the scale-out store, started once per test run inside a temp folder, by PID, on free loopback
/// ports (other engineers' runs start their own): a single-node Ceph 16 (one monitor, one OSD on memstore, pool size 1,
/// <c>auth none</c>) with radosgw's beast frontend and an S3 user, and a single etcd. Every process runs in the
/// foreground as this fixture's child and is stopped by its PID when the run ends.
/// </summary>
public sealed class CephEtcd : IAsyncLifetime
{
    public const string AccessKey = "AIRLOCKTESTKEY";
    public const string SecretKey = "airlock-test-secret-key-not-for-production";

    private readonly List<Process> _processes = [];
    private TempRoot? _root;
    private Process? _radosgw;
    private Process? _etcd;

    /// <summary>radosgw's S3 endpoint, <c>http://127.0.0.1:PORT</c>.</summary>
    public Uri S3Endpoint { get; private set; } = null!;

    /// <summary>etcd's client address, <c>127.0.0.1:PORT</c>.</summary>
    public string EtcdEndpoint { get; private set; } = null!;

    public int RadosgwPid => _radosgw!.Id;

    public int EtcdPid => _etcd!.Id;

    public string Folder => _root!.Path;

    /// <summary>A <c>--storage</c> URL for a fresh prefix of the test bucket.</summary>
    public string StorageUrl(string prefix, string bucket = "airlock-tests") => $"s3://{bucket}/{prefix}?endpoint={S3Endpoint}&region=us-east-1&path-style=true";

    public async Task InitializeAsync()
    {
        // The ports are found free and bound moments later by the engines: another run on this machine may take one in
        // between, and then a health check here is answered by that run's engine while ours has exited (a full run once
        // paused its own etcd and got answers from another run's). Start again on new ports until each port is ours.
        // (An engine whose port was taken may also exit before its health check: that start fails, and is tried again.)
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                if (await StartAsync())
                {
                    return;
                }
            }
            catch (Exception) when (attempt < 3)
            {
            }

            await StopAsync();
            if (attempt == 3)
            {
                throw new InvalidOperationException("another process took radosgw's or etcd's port three times in a row");
            }
        }
    }

    private async Task<bool> StartAsync()
    {
        _processes.Clear();
        _root = TempRoot.Create("airlock-ceph-");
        var d = _root.Path;
        var mon = FreePort();
        var rgw = FreePort();
        foreach (var sub in new[] { "run", "log", "mon", "osd/osd.0", "rgw", "etcd" })
        {
            Directory.CreateDirectory(Path.Combine(d, sub));
        }

        var fsid = Guid.NewGuid().ToString();
        var conf = Path.Combine(d, "ceph.conf");
        await File.WriteAllTextAsync(conf, $"""
            [global]
            fsid = {fsid}
            mon host = [v2:127.0.0.1:{mon}]
            public addr = 127.0.0.1
            cluster addr = 127.0.0.1
            ms bind ipv6 = false
            ms bind ipv4 = true
            auth cluster required = none
            auth service required = none
            auth client required = none
            osd pool default size = 1
            osd pool default min size = 1
            osd pool default pg num = 8
            osd pool default pgp num = 8
            mon allow pool size one = true
            mon warn on pool no redundancy = false
            mon data avail warn = 1
            mon data avail crit = 0
            mon max pg per osd = 1000
            osd objectstore = memstore
            memstore device bytes = 6442450944
            osd crush chooseleaf type = 0
            run dir = {d}/run
            admin socket = {d}/run/$name.asok
            log file = {d}/log/$name.log
            mon data = {d}/mon/$name
            osd data = {d}/osd/$name
            keyring = {d}/keyring
            [client.rgw]
            ms mon client mode = crc
            rgw frontends = beast endpoint=127.0.0.1:{rgw}
            rgw data = {d}/rgw

            """);
        var monmap = Path.Combine(d, "monmap");
        await RunAsync("monmaptool", "--create", "--addv", "a", $"[v2:127.0.0.1:{mon}]", "--fsid", fsid, monmap);
        await RunAsync("ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", monmap);
        Start("ceph-mon", "-f", "-c", conf, "-i", "a");
        var osdUuid = Guid.NewGuid().ToString();
        var id = (await RunAsync("ceph", "-c", conf, "--connect-timeout", "30", "osd", "new", osdUuid)).Trim();
        await RunAsync("ceph-osd", "-c", conf, "-i", id, "--mkfs", "--osd-uuid", osdUuid);
        Start("ceph-osd", "-f", "-c", conf, "-i", id);
        _radosgw = Start("radosgw", "-f", "-c", conf, "-n", "client.rgw");
        S3Endpoint = new Uri($"http://127.0.0.1:{rgw}");

        var client = FreePort();
        var peer = FreePort();
        EtcdEndpoint = $"127.0.0.1:{client}";
        _etcd = Start("etcd", "--name", "airlock-test", "--data-dir", Path.Combine(d, "etcd", "data"),
            "--listen-client-urls", $"http://{EtcdEndpoint}", "--advertise-client-urls", $"http://{EtcdEndpoint}",
            "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
            "--initial-cluster", $"airlock-test=http://127.0.0.1:{peer}", "--log-level", "warn");

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await WaitAsync(http, S3Endpoint, "radosgw");
        await WaitAsync(http, new Uri($"http://{EtcdEndpoint}/health"), "etcd");
        if (!ListensOn(_radosgw, rgw) || !ListensOn(_etcd, client))
        {
            return false;
        }

        await RunAsync("radosgw-admin", "-c", conf, "user", "create", "--uid=airlock", "--display-name=airlock", $"--access-key={AccessKey}", $"--secret-key={SecretKey}");
        return true;
    }

    /// <summary>Whether <paramref name="process"/> itself holds the socket listening on loopback <paramref name="port"/> (/proc/net/tcp and its fds).</summary>
    private static bool ListensOn(Process process, int port)
    {
        var listening = new HashSet<string>(StringComparer.Ordinal);
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" }.Where(File.Exists))
        {
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // sl local_address rem_address st … inode: "0: 0100007F:1F90 00000000:0000 0A … 12345"
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var local = fields[1];
                if (fields[3] == "0A" && int.Parse(local.AsSpan(local.LastIndexOf(':') + 1), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture) == port)
                {
                    listening.Add(fields[9]);
                }
            }
        }

        if (process.HasExited || listening.Count == 0)
        {
            return false;
        }

        return Directory.EnumerateFileSystemEntries($"/proc/{process.Id}/fd")
            .Select(fd => new FileInfo(fd).LinkTarget)
            .Any(target => target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && listening.Contains(target[8..^1]));
    }

    /// <summary>Stops (SIGSTOP) or resumes (SIGCONT) radosgw: the object store stops answering without closing connections.</summary>
    public void PauseObjectStore(bool paused) => Signals.Send(RadosgwPid, paused ? 19 : 18);

    /// <summary>Stops (SIGSTOP) or resumes (SIGCONT) etcd.</summary>
    public void PauseEtcd(bool paused) => Signals.Send(EtcdPid, paused ? 19 : 18);

    public Task DisposeAsync() => StopAsync();

    private async Task StopAsync()
    {
        foreach (var process in Enumerable.Reverse(_processes))
        {
            Signals.Send(process.Id, 18);
            Signals.Send(process.Id, Signals.Terminate);
        }

        foreach (var process in _processes)
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                Signals.Send(process.Id, Signals.Kill);
            }

            process.Dispose();
        }

        _root?.UnmountAndDelete();
    }

    private Process Start(string tool, params string[] arguments)
    {
        var info = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{tool} did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
        return process;
    }

    private async Task<string> RunAsync(string tool, params string[] arguments)
    {
        var result = await Tool.RunAsync(tool, arguments, TimeSpan.FromSeconds(60));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)} failed ({result.ExitCode}): {result.Stderr}{result.Stdout}");
        }

        return result.Stdout;
    }

    private async Task WaitAsync(HttpClient http, Uri uri, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(uri);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }

            if (_processes.FirstOrDefault(p => p.HasExited) is { } dead)
            {
                throw new InvalidOperationException($"{dead.StartInfo.FileName} exited with {dead.ExitCode} before {what} was ready; logs in {Folder}/log");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} did not answer at {uri} within 90 s; logs in {Folder}/log");
            }

            await Task.Delay(200);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
