using System.Runtime.InteropServices;

namespace Airlock.Node.ContainerdSupervision;

/// <summary>POSIX signals to one process by PID. .NET's <c>Process.Kill</c> only sends SIGKILL; containerd deserves SIGTERM first.</summary>
internal static partial class ProcessSignals
{
    public const int Terminate = 15;

    public const int Kill = 9;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when the process is already gone.</summary>
    public static bool Send(int pid, int signal) => SendSignal(pid, signal) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
