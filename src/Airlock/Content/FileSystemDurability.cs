using System.Runtime.InteropServices;

namespace Airlock.Content;

/// <summary>
/// fsync of a directory, so a rename survives a power cut. .NET has no API for it; this is the only
/// libc call the store needs for durability.
/// </summary>
internal static partial class FileSystemDurability
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000;

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

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
