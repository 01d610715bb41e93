using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Airlock.Testing;

/// <summary>
/// A long-running server a test started itself (registry, containerd). It keeps the tail of the
/// server's output for failure messages and is stopped by its own PID: SIGTERM, then SIGKILL when it
/// does not exit in time. Nothing is ever stopped by name.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private const int MaxLogLines = 400;
    private readonly Process _process;
    private readonly Queue<string> _log = new();
    private bool _stopped;

    private ServerProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    public string Name { get; }

    /// <summary>Kept after the process is gone, so callers can check that it really is.</summary>
    public int Pid { get; private set; }

    public bool HasExited => _stopped || _process.HasExited;

    /// <summary>The last lines the server wrote to stdout and stderr.</summary>
    public string RecentOutput
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log);
            }
        }
    }

    public static ServerProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = Tool.StartInfo(fileName, arguments);

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var server = new ServerProcess(process, Path.GetFileName(fileName));
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start {fileName}");
        }

        server.Pid = process.Id;
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>
    /// A loopback TCP port held bound but not listening for as long as the socket lives: connecting to it is
    /// refused, and no server started meanwhile (this test's or another's) can be given it, as it could be a port
    /// only seen free a moment ago.
    /// </summary>
    public static Socket ReserveClosedLoopbackPort()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        // Without SO_REUSEADDR here, a server setting it cannot share the port either.
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, false);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return socket;
    }

    /// <summary>A loopback TCP port that was free a moment ago.</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Throws with the server's output when it has already died (e.g. a bad config).</summary>
    public void EnsureRunning()
    {
        if (_stopped)
        {
            throw new InvalidOperationException($"{Name} (pid {Pid}) was stopped");
        }

        if (_process.HasExited)
        {
            throw new InvalidOperationException($"{Name} (pid {Pid}) exited with {_process.ExitCode}:\n{RecentOutput}");
        }
    }

    /// <summary>Asks the server to stop (SIGTERM) and kills it if it has not exited after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        if (!_process.HasExited)
        {
            _ = Signals.Send(Pid, Signals.Terminate);
            using var timeout = new CancellationTokenSource(grace);
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: false);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(10));
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.Enqueue(line);
            while (_log.Count > MaxLogLines)
            {
                _log.Dequeue();
            }
        }
    }
}
