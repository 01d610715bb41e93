using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Airlock.Testing;

namespace Airlock.Conformance.Tests.Harness;

/// <summary>
/// The registry the suite runs against. With OCI_ROOT_URL set it is that registry, untouched. Otherwise it
/// is a child process on a free loopback port with a temporary data directory: Airlock's
/// <c>airlock registry</c> by default, <c>airlock registry</c> with blobs in S3 and metadata in etcd (a real
/// radosgw and etcd started for the run, <see cref="CephEtcd"/>) when AIRLOCK_CONFORMANCE_TARGET=airlock-s3, or
/// Debian's distribution 2.8 (<c>docker-registry</c>) when AIRLOCK_CONFORMANCE_TARGET=distribution, which is how the
/// port itself was validated.
/// One instance serves all four workflows, as in the upstream suite (they share one namespace).
/// </summary>
public sealed class RegistryUnderTest : IAsyncDisposable
{
    public const string TargetVariable = "AIRLOCK_CONFORMANCE_TARGET";

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static RegistryUnderTest? _shared;
    private static int _released;

    private readonly Process? _process;
    private readonly string? _workDirectory;
    private readonly CephEtcd? _engines;
    private readonly StringBuilder _log = new();
    private int _stopped;

    private RegistryUnderTest(string target, Uri rootUrl, Process? process, string? workDirectory, CephEtcd? engines = null)
    {
        _engines = engines;
        Target = target;
        RootUrl = rootUrl;
        _process = process;
        _workDirectory = workDirectory;
    }

    /// <summary>"airlock", "airlock-s3", "distribution" or "external".</summary>
    public string Target { get; }

    public Uri RootUrl { get; }

    /// <summary>
    /// Whether the target mounts a blob named by <c>mount</c> alone (no <c>from</c>). Neither built-in target
    /// does; OCI_AUTOMATIC_CROSSMOUNT overrides.
    /// </summary>
    public bool AutomaticCrossmount => ConformanceSettings.Current.AutomaticCrossmount ?? false;

    /// <summary>The shared registry, started on first use by whichever workflow runs first.</summary>
    public static async Task<RegistryUnderTest> AcquireAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_shared is null)
            {
                _shared = await StartAsync();
                AppDomain.CurrentDomain.ProcessExit += (_, _) => _shared?.Stop();
            }

            return _shared;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>
    /// How many workflows this run will execute (set by <see cref="WorkflowOrderer"/>, which sees the run
    /// after filtering), so the last of them stops the registry. The test host does not reliably raise
    /// ProcessExit, so this, not the exit handler, is what stops the child.
    /// </summary>
    internal static int PlannedWorkflows { get; set; } = ConformanceSettings.Current.EnabledWorkflows.Count;

    /// <summary>Called by each workflow when it is done; the last planned workflow stops the process.</summary>
    public static async Task ReleaseAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (++_released >= PlannedWorkflows && _shared is not null)
            {
                await _shared.DisposeAsync();
                _shared = null;
            }
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>What the child process printed, for failure messages.</summary>
    public string RecentLog()
    {
        lock (_log)
        {
            var text = _log.ToString();
            return text.Length <= 4000 ? text : text[^4000..];
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    private void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        if (_process is not null)
        {
            try
            {
                // By PID (the Process object we started), never by name: other registries may be running.
                if (!_process.HasExited)
                {
                    _process.Kill(entireProcessTree: true);
                    _process.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            _process.Dispose();
        }

        // The engines are this process's children, stopped by their PIDs.
        _engines?.DisposeAsync().GetAwaiter().GetResult();

        if (_workDirectory is not null && Directory.Exists(_workDirectory))
        {
            try
            {
                Directory.Delete(_workDirectory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A file still held by a dying child; the temp dir is cleaned by the OS later.
            }
        }
    }

    private static async Task<RegistryUnderTest> StartAsync()
    {
        var settings = ConformanceSettings.Current;
        if (settings.RootUrl is not null)
        {
            return new RegistryUnderTest("external", settings.RootUrl, null, null);
        }

        var target = Environment.GetEnvironmentVariable(TargetVariable) ?? "airlock";
        var port = FreeLoopbackPort();
        var listen = string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{port}");
        var workDirectory = Directory.CreateTempSubdirectory("airlock-conformance-").FullName;
        var dataDirectory = Path.Combine(workDirectory, "data");
        Directory.CreateDirectory(dataDirectory);

        CephEtcd? engines = null;
        if (target == "airlock-s3")
        {
            engines = new CephEtcd();
            try
            {
                await engines.InitializeAsync();
            }
            catch
            {
                await engines.DisposeAsync();
                throw;
            }
        }

        var start = target switch
        {
            "airlock" => AirlockStartInfo(listen, dataDirectory, workDirectory),
            "airlock-s3" => AirlockOnS3StartInfo(listen, dataDirectory, workDirectory, engines!),
            "distribution" => DistributionStartInfo(listen, dataDirectory, workDirectory),
            _ => throw new InvalidOperationException(
                $"{TargetVariable}={target} is not a known target; use airlock, airlock-s3 or distribution, or set OCI_ROOT_URL"),
        };
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;

        var process = new Process { StartInfo = start };
        var registry = new RegistryUnderTest(target, new Uri($"http://{listen}"), process, workDirectory, engines);
        process.OutputDataReceived += (_, e) => registry.Append(e.Data);
        process.ErrorDataReceived += (_, e) => registry.Append(e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"cannot start {start.FileName}: {e.Message}", e);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await registry.WaitUntilAnsweringAsync();
        return registry;
    }

    private static ProcessStartInfo AirlockStartInfo(string listen, string dataDirectory, string workDirectory)
    {
        var assemblyDirectory = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        // bin/<Configuration>/<tfm>/: run the CLI built in the same configuration as this test assembly.
        var configuration = assemblyDirectory.Parent?.Name ?? "Debug";
        var repositoryRoot = assemblyDirectory;
        while (repositoryRoot is not null && !File.Exists(Path.Combine(repositoryRoot.FullName, "Airlock.slnx")))
        {
            repositoryRoot = repositoryRoot.Parent;
        }

        if (repositoryRoot is null)
        {
            throw new InvalidOperationException($"cannot find Airlock.slnx above {assemblyDirectory.FullName}");
        }

        var cliDirectory = Path.Combine(repositoryRoot.FullName, "src", "Airlock.Cli", "bin", configuration, assemblyDirectory.Name);
        var apphost = Path.Combine(cliDirectory, "airlock");
        var dll = Path.Combine(cliDirectory, "airlock.dll");
        ProcessStartInfo start;
        if (File.Exists(apphost))
        {
            start = new ProcessStartInfo(apphost);
        }
        else if (File.Exists(dll))
        {
            start = new ProcessStartInfo("dotnet");
            start.ArgumentList.Add(dll);
        }
        else
        {
            throw new InvalidOperationException($"the Airlock CLI is not built: neither {apphost} nor {dll} exists");
        }

        foreach (var argument in new[] { "registry", "--listen", listen, "--data-dir", dataDirectory })
        {
            start.ArgumentList.Add(argument);
        }

        // The child must not pick up this machine's config.yaml or AIRLOCK_* settings meant for something else.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("AIRLOCK_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        // No config file: /etc/airlock/config.yaml of this machine must not change what is tested.
        start.Environment["AIRLOCK_CONFIG"] = "/dev/null";
        return start;
    }

    /// <summary><c>airlock registry</c> as a scale-out replica: blobs in the run's radosgw, metadata in its etcd.</summary>
    private static ProcessStartInfo AirlockOnS3StartInfo(string listen, string dataDirectory, string workDirectory, CephEtcd engines)
    {
        var start = AirlockStartInfo(listen, dataDirectory, workDirectory);
        var prefix = "conformance-" + Guid.NewGuid().ToString("N")[..12];
        foreach (var argument in new[] { "--storage", engines.StorageUrl(prefix), "--metadata", $"etcd://{engines.EtcdEndpoint}/{prefix}" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["AWS_ACCESS_KEY_ID"] = CephEtcd.AccessKey;
        start.Environment["AWS_SECRET_ACCESS_KEY"] = CephEtcd.SecretKey;
        return start;
    }

    private static ProcessStartInfo DistributionStartInfo(string listen, string dataDirectory, string workDirectory)
    {
        const string binary = "/usr/bin/docker-registry";
        if (!File.Exists(binary))
        {
            throw new InvalidOperationException($"{binary} (distribution 2.8) is not installed; test.sh installs docker-registry");
        }

        var config = Path.Combine(workDirectory, "config.yml");
        File.WriteAllText(config, $"""
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {dataDirectory}
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: {listen}
            """);
        var start = new ProcessStartInfo(binary);
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(config);
        return start;
    }

    private async Task WaitUntilAnsweringAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (_process!.HasExited)
            {
                var exitCode = _process.ExitCode;
                Stop();
                throw new InvalidOperationException(
                    $"{Target} registry exited with code {exitCode} before answering GET /v2/:\n{RecentLog()}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(RootUrl, "/v2/"));
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Listening but slow to answer; try again.
            }

            await Task.Delay(100);
        }

        Stop();
        throw new InvalidOperationException($"{Target} registry did not answer GET {RootUrl}v2/ within 30 s:\n{RecentLog()}");
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
