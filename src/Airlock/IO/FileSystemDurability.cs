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
    private const int OWrOnly = 1;
    private const int OCloExec = 0x80000;
    private const uint SyncFileRangeWrite = 2;

    // O_DIRECTORY and O_DIRECT swap values between the generic Linux ABI (x86-64) and Arm's.
    private static readonly bool ArmFlags = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture
        is System.Runtime.InteropServices.Architecture.Arm64 or System.Runtime.InteropServices.Architecture.Arm;

    private static int ODirectory => ArmFlags ? 0x4000 : 0x10000;

    private static int ODirect => ArmFlags ? 0x10000 : 0x4000;

    /// <summary>
    /// Opens an existing file a second time for O_DIRECT writes (memory, offset and length aligned to
    /// <see cref="AlignedBuffer.Alignment"/>): the bytes go from the buffer to the disk without being copied into
    /// the page cache. Null where that is not possible (not Linux, a file system without direct I/O such as
    /// some tmpfs or FUSE mounts): the caller writes through the page cache instead.
    /// </summary>
    public static SafeFileHandle? OpenForDirectWrite(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var fd = Open(path, OWrOnly | ODirect | OCloExec);
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }

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
