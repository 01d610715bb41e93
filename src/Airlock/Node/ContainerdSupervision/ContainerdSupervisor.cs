using System.Diagnostics;
using Airlock.Node.Containerd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Node.ContainerdSupervision;

/// <summary>How the agent runs containerd: which binary, which config, and how it restarts it.</summary>
public sealed record ContainerdSupervisorOptions
{
    /// <summary>The name of <see cref="PidFile"/> in the state directory the agent gives containerd.</summary>
    public const string PidFileName = "containerd.pid";

    /// <summary>The rendered config.toml (<c>containerd --config</c>).</summary>
    public required string ConfigPath { get; init; }

    /// <summary>The gRPC socket the config names; containerd is up once it answers there.</summary>
    public required string SocketPath { get; init; }

    /// <summary>
    /// Where the PID of the running containerd is kept (in its state directory, so it does not outlive a reboot), locked while
    /// the supervisor runs. A containerd left behind by an agent that crashed is recognised by it and stopped before a new
    /// one starts; null: no such recovery (a containerd already serving the socket is then always refused).
    /// </summary>
    public string? PidFile { get; init; }

    /// <summary>containerd binary, looked up on PATH when not a path (Debian's <c>/usr/bin/containerd</c>).</summary>
    public string Executable { get; init; } = "containerd";

    /// <summary>Extra environment for containerd only (proxy variables, as K3s passes them).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Environment { get; init; } = [];

    /// <summary>How long containerd may take to answer on its socket after being started.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Time between SIGTERM and SIGKILL when stopping.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Wait before the first restart after an unexpected exit; doubled after each quick failure.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound of the wait between restarts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A containerd that ran this long before exiting counts as stable: the backoff starts over.</summary>
    public TimeSpan StableUptime { get; init; } = TimeSpan.FromSeconds(60);

    public ILogger Logger { get; init; } = NullLogger.Instance;
}

/// <summary>containerd could not be started, or did not answer on its socket in time.</summary>
public sealed class ContainerdStartException(string message) : Exception(message);

/// <summary>
/// Runs Debian's containerd as a child process, as K3s runs its own: started with the rendered config, its log
/// lines forwarded to <see cref="ILogger"/> at their own level, restarted with a bounded exponential backoff
/// when it exits on its own (reset once it ran for <see cref="ContainerdSupervisorOptions.StableUptime"/>), and
/// stopped with SIGTERM, then SIGKILL after <see cref="ContainerdSupervisorOptions.StopTimeout"/>. Signals go
/// to the PID it started and nothing else: containerd's shims are left running so containers survive a
/// restart of containerd, as they do under K3s. A containerd an earlier supervisor started and could not stop
/// (the agent was killed) is found through <see cref="ContainerdSupervisorOptions.PidFile"/> and stopped the same
/// way before the new one starts, so a crashed agent comes back instead of finding its own containerd "foreign".
/// </summary>
public sealed class ContainerdSupervisor(ContainerdSupervisorOptions options, TimeProvider timeProvider) : IAsyncDisposable
{
    private const int RecentLines = 20;

    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Queue<string> _recent = new();
    private Running? _current;
    private Task? _supervision;
    private ContainerdPidFile? _pidFile;

    /// <summary>PID of the containerd running now; null before start, after stop, and while it is being restarted.</summary>
    public int? Pid => _current is { Exited.IsCompleted: false } running ? running.Process.Id : null;

    /// <summary>Restarts after an unexpected exit so far.</summary>
    public int Restarts { get; private set; }

    /// <summary>Called after containerd was restarted (on its own exit or on request) and answers again.</summary>
    public Func<string, CancellationToken, Task>? Restarted { get; init; }

    /// <summary>Starts containerd and waits until it answers on its socket, then supervises it until <see cref="StopAsync"/>.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_supervision is not null)
        {
            throw new InvalidOperationException("containerd is already supervised");
        }

        if (options.PidFile is { } path)
        {
            var pidFile = ContainerdPidFile.Acquire(path);
            try
            {
                await StopLeftOverAsync(pidFile, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // Unlocked but kept (stopping removes it): a left-over containerd that did not stop is found again next time.
                pidFile.Dispose();
                throw;
            }

            _pidFile = pidFile;
        }

        if (await AnswersAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new ContainerdStartException(
                $"a containerd is already serving {options.SocketPath}; stop it, or run the agent with --containerd-socket {options.SocketPath} to use it");
        }

        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await StartLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }

        _supervision = Task.Run(() => SuperviseAsync(_stopping.Token), CancellationToken.None);
    }

    /// <summary>Stops containerd gracefully and starts it again (a config.toml change); <paramref name="reason"/> is logged.</summary>
    public async Task RestartAsync(string reason, CancellationToken cancellationToken)
    {
        await _lifecycle.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            options.Logger.LogInformation("Restarting containerd (PID {Pid}): {Reason}", _current?.Process.Id, reason);
            if (_current is { } running)
            {
                await StopProcessAsync(running).ConfigureAwait(false);
            }

            await StartLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }

        if (Restarted is { } restarted)
        {
            await restarted(reason, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>SIGTERM, then SIGKILL after the stop timeout; no restart follows.</summary>
    public async Task StopAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_supervision is not null)
        {
            try
            {
                await _supervision.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_current is { } running)
            {
                await StopProcessAsync(running).ConfigureAwait(false);
            }

            // Stopped: nothing left for the next agent to recover.
            if (_pidFile is { } pidFile && _current is null or { Exited.IsCompleted: true })
            {
                pidFile.Remove();
                pidFile.Dispose();
                _pidFile = null;
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _current?.Process.Dispose();
        _pidFile?.Dispose();
        _stopping.Dispose();
        _lifecycle.Dispose();
    }

    /// <summary>
    /// The containerd the pid file names, when it is still running with this supervisor's command line: left behind by an
    /// agent that was killed. Stopped as a restart stops it (SIGTERM, SIGKILL after the stop timeout), so its shims and
    /// containers keep running and the new containerd takes them over. Anything else the file names is left alone.
    /// </summary>
    private async Task StopLeftOverAsync(ContainerdPidFile pidFile, CancellationToken cancellationToken)
    {
        if (pidFile.PreviousPid is not { } pid)
        {
            return;
        }

        if (!ContainerdPidFile.IsContainerdOf(pid, options.Executable, options.ConfigPath, out var commandLine))
        {
            options.Logger.LogInformation("{PidFile} names PID {Pid} ({CommandLine}), not a containerd started with {Config}: the previous one is gone; leaving that process alone",
                pidFile.Path, pid, commandLine ?? "not running", options.ConfigPath);
            pidFile.Record(null);
            return;
        }

        options.Logger.LogWarning("containerd (PID {Pid}) started by an earlier agent is still running (that agent did not stop it); stopping it to start one "
            + "under supervision, its containers keep running", pid);
        ProcessSignals.Send(pid, ProcessSignals.Terminate);
        if (!await ExitsWithinAsync(pid, options.StopTimeout, cancellationToken).ConfigureAwait(false))
        {
            options.Logger.LogWarning("containerd (PID {Pid}) did not stop within {Timeout} of SIGTERM; sending SIGKILL", pid, options.StopTimeout);
            ProcessSignals.Send(pid, ProcessSignals.Kill);
            if (!await ExitsWithinAsync(pid, options.StopTimeout, cancellationToken).ConfigureAwait(false))
            {
                throw new ContainerdStartException($"containerd (PID {pid}) left by an earlier agent does not stop, even on SIGKILL; it still serves {options.SocketPath}");
            }
        }

        options.Logger.LogInformation("containerd (PID {Pid}) left by an earlier agent stopped", pid);
        pidFile.Record(null);
    }

    /// <summary>Polls: the process is not this one's child, so there is no exit to wait for.</summary>
    private async Task<bool> ExitsWithinAsync(int pid, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = timeProvider.GetUtcNow() + timeout;
        while (ContainerdPidFile.IsRunning(pid))
        {
            if (timeProvider.GetUtcNow() >= deadline)
            {
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), timeProvider, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    private async Task SuperviseAsync(CancellationToken stopping)
    {
        var backoff = options.InitialBackoff;
        while (!stopping.IsCancellationRequested)
        {
            var watched = _current!;
            await watched.Exited.WaitAsync(stopping).ConfigureAwait(false);
            await _lifecycle.WaitAsync(stopping).ConfigureAwait(false);
            try
            {
                if (!ReferenceEquals(watched, _current))
                {
                    // Replaced on purpose by RestartAsync: supervise the new one.
                    continue;
                }

                var uptime = timeProvider.GetUtcNow() - watched.Started;
                if (uptime >= options.StableUptime)
                {
                    backoff = options.InitialBackoff;
                }

                options.Logger.LogError("containerd (PID {Pid}) exited with code {ExitCode} after {Uptime}; restarting in {Backoff}",
                    watched.Process.Id, watched.Process.ExitCode, uptime, backoff);
                await Task.Delay(backoff, timeProvider, stopping).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, options.MaxBackoff.Ticks));
                try
                {
                    await StartLockedAsync(stopping).ConfigureAwait(false);
                }
                catch (ContainerdStartException ex)
                {
                    // _current is the failed process, already exited: the next round waits longer and tries again.
                    options.Logger.LogError("containerd did not come back: {Error}", ex.Message);
                    continue;
                }

                Restarts++;
            }
            finally
            {
                _lifecycle.Release();
            }

            if (Restarted is { } restarted)
            {
                try
                {
                    await restarted("containerd exited", stopping).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    options.Logger.LogError("After restarting containerd: {Error}", ex.Message);
                }
            }
        }
    }

    private async Task StartLockedAsync(CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(options.Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(options.ConfigPath);
        // containerd speaks sd_notify itself: with the agent's NOTIFY_SOCKET it would tell systemd READY=1 before the
        // images directory is imported, which is the agent's to say.
        start.Environment.Remove("NOTIFY_SOCKET");
        foreach (var (name, value) in options.Environment)
        {
            start.Environment[name] = value;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(options.SocketPath)!);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new ContainerdStartException($"{options.Executable} did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new ContainerdStartException($"cannot run {options.Executable}: {ex.Message} (install containerd, e.g. apt-get install containerd)");
        }

        var running = new Running(process, timeProvider.GetUtcNow(), ForwardAsync(process.StandardError), ForwardAsync(process.StandardOutput));
        _current?.Process.Dispose();
        _current = running;

        // At once, not once it serves: an agent killed while containerd starts must leave it findable too.
        _pidFile?.Record(process.Id);
        options.Logger.LogInformation("Started containerd (PID {Pid}) with {Config}", process.Id, options.ConfigPath);
        await WaitUntilServingAsync(running, cancellationToken).ConfigureAwait(false);
    }

    private async Task WaitUntilServingAsync(Running running, CancellationToken cancellationToken)
    {
        var deadline = timeProvider.GetUtcNow() + options.StartTimeout;
        while (true)
        {
            if (running.Exited.IsCompleted)
            {
                await DrainAsync(running).ConfigureAwait(false);
                throw new ContainerdStartException(
                    $"containerd exited with code {running.Process.ExitCode} before serving {options.SocketPath}: {RecentOutput()}");
            }

            if (await AnswersAsync(cancellationToken).ConfigureAwait(false))
            {
                options.Logger.LogInformation("containerd (PID {Pid}) is serving {Socket}", running.Process.Id, options.SocketPath);
                return;
            }

            if (timeProvider.GetUtcNow() > deadline)
            {
                await StopProcessAsync(running).ConfigureAwait(false);
                throw new ContainerdStartException($"containerd did not answer on {options.SocketPath} within {options.StartTimeout}: {RecentOutput()}");
            }

            await Task.WhenAny(running.Exited, Task.Delay(TimeSpan.FromMilliseconds(50), timeProvider, cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private async Task<bool> AnswersAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(options.SocketPath))
        {
            return false;
        }

        await using var client = ContainerdClient.Connect(options.SocketPath);
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await client.VersionAsync(attempt.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is ContainerdException || ex is OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task StopProcessAsync(Running running)
    {
        if (running.Exited.IsCompleted)
        {
            return;
        }

        var pid = running.Process.Id;
        ProcessSignals.Send(pid, ProcessSignals.Terminate);
        if (await Task.WhenAny(running.Exited, Task.Delay(options.StopTimeout, timeProvider)).ConfigureAwait(false) != running.Exited)
        {
            options.Logger.LogWarning("containerd (PID {Pid}) did not stop within {Timeout} of SIGTERM; sending SIGKILL", pid, options.StopTimeout);
            running.Process.Kill(entireProcessTree: false);
            await running.Exited.ConfigureAwait(false);
        }

        await DrainAsync(running).ConfigureAwait(false);
        options.Logger.LogInformation("containerd (PID {Pid}) stopped with code {ExitCode}", pid, running.Process.ExitCode);
    }

    /// <summary>Lets the last log lines through; bounded, in case something containerd started still holds its pipes.</summary>
    private static async Task DrainAsync(Running running)
    {
        try
        {
            await Task.WhenAll(running.Readers).WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    private async Task ForwardAsync(StreamReader reader)
    {
        // Read here rather than with BeginOutputReadLine, so waiting for the exit never waits for the pipe's EOF.
        while (await reader.ReadLineAsync(CancellationToken.None).ConfigureAwait(false) is { } line)
        {
            lock (_recent)
            {
                _recent.Enqueue(line);
                if (_recent.Count > RecentLines)
                {
                    _recent.Dequeue();
                }
            }

            ContainerdLogLine.Parse(line).WriteTo(options.Logger);
        }
    }

    private string RecentOutput()
    {
        lock (_recent)
        {
            return _recent.Count == 0 ? "(no output)" : string.Join(Environment.NewLine, _recent);
        }
    }

    private sealed class Running(Process process, DateTimeOffset started, params Task[] readers)
    {
        public Process Process { get; } = process;

        public DateTimeOffset Started { get; } = started;

        public Task[] Readers { get; } = readers;

        public Task Exited { get; } = process.WaitForExitAsync();
    }
}
