using System.Runtime.InteropServices;
using Airlock.Content;

namespace Airlock.Cluster.Pki;

/// <summary>
/// How the cluster keeps its files: written whole or not at all (temporary file, fsync, rename, fsync of the folder), secrets
/// with mode 0600, in folders that belong to the user running Airlock.
/// </summary>
internal static partial class ClusterFiles
{
    public const UnixFileMode Secret = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode Public = Secret | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    public const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Writes <paramref name="content"/> to <paramref name="path"/> atomically with <paramref name="mode"/>.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content, UnixFileMode mode)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode };
        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
            FileSystemDurability.FsyncDirectory(directory);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>
    /// Creates <paramref name="path"/> (mode 0700) or checks that the existing folder belongs to the user running Airlock: state
    /// another user owns was made by another installation, and taking it over (even as root, who could) would leave files
    /// that user can no longer read.
    /// </summary>
    public static void EnsureOwnDirectory(string path)
    {
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, PrivateDirectory);
            return;
        }

        var owner = OwnerOf(path);
        var me = GetEffectiveUserId();
        if (owner is { } uid && uid != me)
        {
            throw new UnauthorizedAccessException(
                $"{path} belongs to user id {uid}, not to the user running airlock (id {me}): run airlock as that user, "
                + $"or give it the folder (chown -R {me} {path}) if it is really this installation's");
        }
    }

    /// <summary>The owner's user id of <paramref name="path"/>, or null where it cannot be read (not Linux).</summary>
    public static uint? OwnerOf(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        // struct statx has one layout on every architecture (unlike struct stat): stx_uid is the u32 at offset 20.
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, 0, StatxUid, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot read the owner of {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        return BitConverter.ToUInt32(buffer[20..24]);
    }

    public static uint GetEffectiveUserId() => OperatingSystem.IsLinux() ? Geteuid() : 0;

    private const int AtFdCwd = -100;
    private const uint StatxUid = 0x8;

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint Geteuid();
}
