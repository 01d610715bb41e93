using System.Globalization;
using System.Text;

namespace Airlock.Node.ContainerdSupervision;

/// <summary>
/// The PID of the containerd an agent runs, in a file of its state directory, so the agent started after a crash (SIGKILL,
/// the OOM killer: no chance to stop its child) recognises the containerd it left behind. The agent holds the file locked
/// while it runs, so a second agent on the same state directory is refused instead of taking the first one's containerd.
/// A PID alone proves nothing (after a reboot or a long time it names another process): the process's command line must
/// also be the one the agent starts containerd with, <c>containerd --config &lt;this config.toml&gt;</c>.
/// </summary>
internal sealed class ContainerdPidFile : IDisposable
{
    private readonly FileStream _stream;

    private ContainerdPidFile(string path, FileStream stream, int? previous)
    {
        Path = path;
        _stream = stream;
        PreviousPid = previous;
    }

    public string Path { get; }

    /// <summary>The PID the file held when it was opened (the containerd of an agent that did not stop it), if any.</summary>
    public int? PreviousPid { get; }

    /// <summary>Opens and locks the file; throws <see cref="ContainerdStartException"/> when a running agent holds it.</summary>
    public static ContainerdPidFile Acquire(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        FileStream stream;
        try
        {
            // FileShare.None takes an exclusive flock on Unix, released by the kernel when the holder dies however it dies.
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (File.Exists(path))
        {
            throw new ContainerdStartException($"another airlock agent is running containerd with {path} ({ex.Message}); stop it first, or give this one "
                + "its own --containerd-state");
        }

        using var reader = new StreamReader(stream, Encoding.ASCII, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        var text = reader.ReadToEnd().Trim();
        var previous = int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : (int?)null;
        return new ContainerdPidFile(path, stream, previous);
    }

    /// <summary>Records the containerd just started (replacing whatever the file held).</summary>
    public void Record(int? pid)
    {
        _stream.SetLength(0);
        _stream.Position = 0;
        if (pid is { } value)
        {
            _stream.Write(Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture) + "\n"));
        }

        _stream.Flush(flushToDisk: true);
    }

    /// <summary>Empties and removes the file: containerd was stopped, nothing is left behind.</summary>
    public void Remove()
    {
        Record(null);
        File.Delete(Path);
    }

    public void Dispose() => _stream.Dispose();

    /// <summary>
    /// Whether <paramref name="pid"/> is running (not exited, not a zombie) with the command line <paramref name="executable"/>
    /// <c>--config</c> <paramref name="configPath"/>; <paramref name="commandLine"/> is what it runs, for messages.
    /// </summary>
    public static bool IsContainerdOf(int pid, string executable, string configPath, out string? commandLine)
    {
        commandLine = null;
        if (!IsRunning(pid))
        {
            return false;
        }

        string[] arguments;
        try
        {
            arguments = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        commandLine = string.Join(' ', arguments);
        return arguments.Length == 3
            && System.IO.Path.GetFileName(arguments[0]) == System.IO.Path.GetFileName(executable)
            && arguments[1] == "--config"
            && arguments[2] == configPath;
    }

    /// <summary>Whether the process exists and has not exited (a zombie, exited but not yet reaped by whoever adopted it, has).</summary>
    public static bool IsRunning(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        // "pid (comm) S …": comm may hold spaces and parentheses, the state follows the last ')'.
        var end = stat.LastIndexOf(')');
        return end > 0 && end + 2 < stat.Length && stat[end + 2] is not ('Z' or 'X');
    }
}
