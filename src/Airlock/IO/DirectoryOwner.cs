using System.Runtime.InteropServices;

namespace Airlock.IO;

/// <summary>
/// State folders that belong to the user running Airlock: created private (0700), or checked to be owned by that user when
/// they exist — state another user owns was made by another installation, and taking it over (even as root, who could)
/// would leave files that user can no longer read.
/// </summary>
public static partial class DirectoryOwner
{
    /// <summary><c>0700</c>: folders holding keys and membership.</summary>
    public const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const int AtFdCwd = -100;
    private const uint StatxUid = 0x8;

    /// <summary>
    /// Creates <paramref name="path"/> with mode 0700, or throws <see cref="UnauthorizedAccessException"/> naming the owner
    /// and the fix when it exists and belongs to another user.
    /// </summary>
    public static void EnsureOwned(string path)
    {
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, Private);
            return;
        }

        var me = EffectiveUserId();
        if (OwnerOf(path) is { } owner && owner != me)
        {
            throw new UnauthorizedAccessException(
                $"{path} belongs to user id {owner}, not to the user running airlock (id {me}): run airlock as that user, "
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

    public static uint EffectiveUserId() => OperatingSystem.IsLinux() ? Geteuid() : 0;

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint Geteuid();
}
