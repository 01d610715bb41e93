using System.Runtime.InteropServices;
using System.Text;
using Airlock.Oci;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// The cross-process form of "digests referenced while a collection marks": a collection creates the
/// journal (holding the reference lock exclusively) before it marks and removes it when done; a serving
/// process that creates a reference (holding the reference lock shared) appends the digest while the
/// journal exists. The collection reads what was appended each time it holds the lock exclusively, so
/// every append it reads is complete. With no collection running an append is one failed open(2).
/// </summary>
internal sealed partial class ReferenceJournal(string path)
{
    private const int OWrOnly = 1;
    private const int OAppend = 0x400;
    private const int OCloexec = 0x80000;

    private long _offset;

    /// <summary>Appends one digest if a collection is marking (the caller holds the reference lock shared).</summary>
    public static void Append(string path, Digest digest)
    {
        if (!OperatingSystem.IsLinux())
        {
            AppendPortable(path, digest);
            return;
        }

        // No O_CREAT: a missing journal means no collection is marking, and nothing is recorded.
        var fd = Open(path, OWrOnly | OAppend | OCloexec);
        if (fd < 0)
        {
            return;
        }

        try
        {
            // O_APPEND makes each line one write at the end, whole, even with several appenders.
            var line = Encoding.ASCII.GetBytes(digest + "\n");
            if (Write(fd, line, line.Length) != line.Length)
            {
                throw new IOException($"cannot record a reference in {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Starts recording (the caller holds the reference lock exclusively).</summary>
    public void Begin()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (new FileStream(path, FileMode.Create, FileAccess.Write))
        {
        }

        _offset = 0;
    }

    /// <summary>Adds the digests appended since the last read (the caller holds the reference lock exclusively).</summary>
    public void ReadNew(HashSet<Digest> into)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (file.Length <= _offset)
        {
            return;
        }

        file.Position = _offset;
        using var reader = new StreamReader(file, Encoding.ASCII);
        var consumed = _offset;
        while (reader.ReadLine() is { } line)
        {
            consumed += line.Length + 1;
            if (Digest.TryParse(line, out var digest))
            {
                into.Add(digest);
            }
        }

        _offset = consumed;
    }

    /// <summary>Stops recording.</summary>
    public void End()
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            // Never begun.
        }
    }

    private static void AppendPortable(string path, Digest digest)
    {
        if (File.Exists(path))
        {
            File.AppendAllText(path, digest + "\n", Encoding.ASCII);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, byte[] buffer, nint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
