using System.Runtime.InteropServices;

namespace Airlock.Testing;

/// <summary>
/// A temp folder that container tools (containerd, podman) may have mounted things under. Deleting it
/// first detaches every mount below it, deepest first, so a failed test never leaves a mounted overlay
/// behind or makes the delete walk into a container's rootfs.
/// </summary>
public sealed partial class TempRoot
{
    private const int MntDetach = 2;

    private TempRoot(string path) => Path = path;

    public string Path { get; }

    public static TempRoot Create(string prefix) => new(Directory.CreateTempSubdirectory(prefix).FullName);

    /// <summary>A folder created elsewhere, e.g. one a test gave Airlock's own containerd supervisor.</summary>
    public static TempRoot Of(string path) => new(path);

    /// <summary>Mount points at or below this folder, deepest first.</summary>
    public IReadOnlyList<string> MountsBelow()
    {
        var prefix = Path.TrimEnd('/') + "/";
        return File.ReadLines("/proc/self/mountinfo")
            .Select(line => line.Split(' '))
            .Where(fields => fields.Length > 4)
            .Select(fields => Unescape(fields[4]))
            .Where(mountPoint => mountPoint.StartsWith(prefix, StringComparison.Ordinal) || mountPoint == Path)
            .Distinct()
            .OrderByDescending(mountPoint => mountPoint.Length)
            .ToList();
    }

    /// <summary>Unmounts everything below the folder and deletes it. Returns mounts that would not go.</summary>
    public IReadOnlyList<string> UnmountAndDelete()
    {
        foreach (var mountPoint in MountsBelow())
        {
            _ = Umount2(mountPoint, MntDetach);
        }

        var stuck = MountsBelow();
        if (stuck.Count == 0 && Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }

        return stuck;
    }

    // mountinfo escapes space, tab, newline and backslash as octal.
    private static string Unescape(string field) =>
        field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Umount2(string target, int flags);
}
