using System.Runtime.InteropServices;

namespace Airlock.IO;

/// <summary>
/// An advisory <c>flock(2)</c> on a lock file, shared or exclusive, held by its own open file description
/// (so two holders in one process are as independent as two processes) and released by the kernel when
/// the process dies, so a crashed holder never leaves a stale lock. Elsewhere than Linux it is a no-op.
/// </summary>
internal sealed partial class FileLock : IDisposable
{
    private const int LockSh = 1;
    private const int LockEx = 2;
    private const int LockNb = 4;
    private const int ORdWr = 2;
    private const int OCreat = 0x40;
    private const int OCloexec = 0x80000;
    private const int ENoEnt = 2;
    private const int EIntr = 4;

    private int _fd;

    private FileLock(int fd, string path)
    {
        _fd = fd;
        Path = path;
    }

    public string Path { get; }

    /// <summary>Takes the lock if nobody holds a conflicting one; null otherwise.</summary>
    public static FileLock? TryAcquire(string path, bool exclusive, bool createDirectory = true)
    {
        var fd = OpenLockFile(path, createDirectory);
        if (fd < 0)
        {
            return new FileLock(fd, path);
        }

        if (TryLock(fd, exclusive))
        {
            return new FileLock(fd, path);
        }

        _ = Close(fd);
        return null;
    }

    /// <summary>Waits for the lock without blocking a thread (polls; the holders this waits for hold it briefly).</summary>
    public static async ValueTask<FileLock> AcquireAsync(string path, bool exclusive, CancellationToken cancellationToken, bool createDirectory = true)
    {
        var fd = OpenLockFile(path, createDirectory);
        if (fd < 0)
        {
            return new FileLock(fd, path);
        }

        try
        {
            var wait = 1;
            while (!TryLock(fd, exclusive))
            {
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                wait = Math.Min(wait * 2, 20);
            }
        }
        catch
        {
            _ = Close(fd);
            throw;
        }

        return new FileLock(fd, path);
    }

    /// <summary>Waits for the lock, blocking the calling thread (start-up only).</summary>
    public static FileLock Acquire(string path, bool exclusive)
    {
        var fd = OpenLockFile(path, createDirectory: true);
        if (fd >= 0)
        {
            while (Flock(fd, exclusive ? LockEx : LockSh) != 0)
            {
                if (Marshal.GetLastPInvokeError() != EIntr)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    _ = Close(fd);
                    throw new IOException($"cannot lock {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
                }
            }
        }

        return new FileLock(fd, path);
    }

    /// <summary>Turns an exclusive lock into a shared one (other shared holders may then enter).</summary>
    public void Downgrade()
    {
        if (_fd >= 0 && Flock(_fd, LockSh) != 0)
        {
            throw new IOException($"cannot downgrade the lock on {Path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Close(fd);
        }
    }

    /// <summary>Opens (creating) the lock file; without <paramref name="createDirectory"/> a missing folder is <see cref="DirectoryNotFoundException"/>.</summary>
    private static int OpenLockFile(string path, bool createDirectory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }

        if (createDirectory)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        }

        var fd = Open(path, ORdWr | OCreat | OCloexec, 0x1A4);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var message = $"cannot open lock file {path}: {Marshal.GetPInvokeErrorMessage(errno)}";
            throw errno == ENoEnt ? new DirectoryNotFoundException(message) : new IOException(message);
        }

        return fd;
    }

    private static bool TryLock(int fd, bool exclusive)
    {
        while (true)
        {
            if (Flock(fd, (exclusive ? LockEx : LockSh) | LockNb) == 0)
            {
                return true;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno != EIntr)
            {
                // EWOULDBLOCK: held by someone else. Anything else (ENOLCK) also means "not ours".
                return false;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
