using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Airlock.IO;

/// <summary>
/// The libc calls .NET has no API for: fsync of a directory, so a rename survives a power cut, and
/// sync_file_range, so writeback of a blob being received starts long before its fsync. Elsewhere than
/// Linux they do nothing (the fsync of the file itself still happens through .NET).
/// </summary>
internal static partial class FileSystemDurability
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000;
    private const uint SyncFileRangeWrite = 2;

    public static void FsyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = Open(path, ORdOnly | ODirectory);
        if (fd < 0)
        {
            return;
        }

        try
        {
            _ = Fsync(fd);
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>
    /// Starts writeback of a range of the file without waiting for it (SYNC_FILE_RANGE_WRITE). A hint for
    /// speed only: it makes nothing durable (no metadata, no disk cache flush), so a failure is ignored and
    /// the fsync before the commit stays the one that counts.
    /// </summary>
    public static void StartWriteback(SafeFileHandle file, long offset, long length) =>
        WithDescriptor(file, static (fd, range) => SyncFileRange(fd, range.offset, range.length, SyncFileRangeWrite), (offset, length));

    /// <summary>
    /// fdatasync: the data written so far (and the disk's write cache) on stable storage. Run beside the
    /// writes of an ingest so that its final fsync finds little left; errors are left to that fsync.
    /// </summary>
    public static void FlushData(SafeFileHandle file) => WithDescriptor(file, static (fd, _) => Fdatasync(fd), 0L);

    private static void WithDescriptor<TState>(SafeFileHandle file, Func<int, TState, int> call, TState state)
    {
        if (!OperatingSystem.IsLinux() || file.IsClosed)
        {
            return;
        }

        var added = false;
        try
        {
            // The reference keeps the descriptor open (and unused by another file) while the call runs.
            file.DangerousAddRef(ref added);
            _ = call((int)file.DangerousGetHandle(), state);
        }
        catch (ObjectDisposedException)
        {
            // Closed in the meantime: nothing left to hint or flush.
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int Fdatasync(int fd);

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(int fd, long offset, long nbytes, uint flags);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
