using System.Runtime.InteropServices;

namespace Airlock.Testing;

/// <summary>POSIX signals to one process by PID. .NET can only SIGKILL; servers deserve a SIGTERM first.</summary>
public static partial class Signals
{
    public const int Terminate = 15;
    public const int Kill = 9;

    /// <summary>SIGSTOP (Linux): the process is frozen, signals other than SIGKILL stay pending until <see cref="Continue"/>.</summary>
    public const int Stop = 19;

    public const int Continue = 18;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when the process is already gone.</summary>
    public static bool Send(int pid, int signal) => SendSignal(pid, signal) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
