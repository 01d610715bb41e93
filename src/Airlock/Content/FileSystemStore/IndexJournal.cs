using System.Buffers;
using System.Globalization;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using Airlock.IO;
using Microsoft.Win32.SafeHandles;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// The changes to the repository index since its snapshot, one line each, appended by every process that serves the
/// store: <c>+KEY CRC</c> when a key is added, <c>-KEY CRC</c> when it is removed, CRC being the CRC-32 of the sign and
/// the key. A first line names the snapshot generation the journal follows. Each append is one <c>write(2)</c> on an
/// <c>O_APPEND</c> descriptor, so appends of several processes never mix; a reader takes only lines that are complete
/// (one still being written ends without its line feed), and a complete line that does not check out is damage.
/// </summary>
internal sealed partial class IndexJournal : IDisposable
{
    private const string Magic = "airlock-index-journal 2 ";
    private const int ORdWr = 2;
    private const int OAppend = 0x400;
    private const int OCloexec = 0x80000;
    private const int AtFdCwd = -100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxIno = 0x100;
    private const int ENoEnt = 2;

    private readonly SafeFileHandle _handle;
    private long _read;

    private IndexJournal(SafeFileHandle handle, long generation, ulong inode, long read)
    {
        _handle = handle;
        Generation = generation;
        Inode = inode;
        _read = read;
    }

    /// <summary>The generation of the snapshot this journal follows.</summary>
    public long Generation { get; }

    /// <summary>The file's inode: another one at the journal's path means the journal was replaced (compacted, rebuilt).</summary>
    public ulong Inode { get; }

    /// <summary>Writes an empty journal following the snapshot of <paramref name="generation"/>, atomically and durably.</summary>
    public static void Create(string path, long generation) =>
        AtomicFile.Write(path, Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Magic}{generation}\n")));

    /// <summary>Opens the journal at <paramref name="path"/> positioned after its header; null when there is none.</summary>
    public static IndexJournal? Open(string path)
    {
        var fd = OpenFile(path, ORdWr | OAppend | OCloexec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno == ENoEnt ? null : throw new IOException($"cannot open {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            if (Stat(handle, out var inode) != 0)
            {
                throw new IOException($"cannot stat {path}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
            }

            Span<byte> start = stackalloc byte[64];
            var read = RandomAccess.Read(handle, start, 0);
            var end = start[..read].IndexOf((byte)'\n');
            var header = end < 0 ? string.Empty : Encoding.ASCII.GetString(start[..end]);
            if (!header.StartsWith(Magic, StringComparison.Ordinal)
                || !long.TryParse(header.AsSpan(Magic.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var generation))
            {
                throw new IndexDamagedException($"{path}: not an index journal (header \"{header}\")");
            }

            return new IndexJournal(handle, generation, inode, end + 1);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Whether <paramref name="path"/> still names this file (false once it was replaced or removed).</summary>
    public bool IsAt(string path) => StatPath(AtFdCwd, path, 0, StatxIno, out var stat) == 0 && stat.Ino == Inode;

    /// <summary>The records for <paramref name="changes"/>, ready for one <see cref="Append"/>.</summary>
    public static byte[] Encode(IReadOnlyList<(bool Present, string Key)> changes)
    {
        var buffer = new ArrayBufferWriter<byte>(changes.Sum(c => c.Key.Length + 12));
        foreach (var (present, key) in changes)
        {
            var line = buffer.GetSpan(key.Length + 11);
            line[0] = present ? (byte)'+' : (byte)'-';
            var length = 1 + Encoding.ASCII.GetBytes(key, line[1..]);
            var crc = Crc32.HashToUInt32(line[..length]);
            line[length++] = (byte)' ';
            crc.TryFormat(line[length..], out var written, "x8", CultureInfo.InvariantCulture);
            length += written;
            line[length++] = (byte)'\n';
            buffer.Advance(length);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Appends encoded records in one write at the end of the file, whoever else appends.</summary>
    public void Append(byte[] records)
    {
        var written = Write(_handle, records, records.Length);
        if (written != records.Length)
        {
            // A short write (disk full) leaves a line without its end, which readers take as damage once more follows.
            var error = written < 0 ? Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError()) : $"{written} of {records.Length} bytes written";
            throw new IOException($"cannot append to the repository index journal: {error}");
        }
    }

    /// <summary>
    /// Hands every complete record written since the last call to <paramref name="apply"/>, in order, and returns how many
    /// there were; a line still being written is left for the next call. <see cref="IndexDamagedException"/> when a
    /// complete line does not check out.
    /// </summary>
    public int ReadNew(Action<bool, string> apply)
    {
        var length = RandomAccess.GetLength(_handle);
        if (length <= _read)
        {
            return 0;
        }

        var size = (int)Math.Min(length - _read, int.MaxValue);
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            var filled = 0;
            while (filled < size)
            {
                var read = RandomAccess.Read(_handle, buffer.AsSpan(filled, size - filled), _read + filled);
                if (read == 0)
                {
                    break;
                }

                filled += read;
            }

            var span = buffer.AsSpan(0, filled);
            var records = 0;
            int end;
            while ((end = span.IndexOf((byte)'\n')) >= 0)
            {
                var (present, key) = Parse(span[..end]);
                apply(present, key);
                records++;
                span = span[(end + 1)..];
                _read += end + 1;
            }

            return records;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public void Dispose() => _handle.Dispose();

    private (bool Present, string Key) Parse(ReadOnlySpan<byte> line)
    {
        var space = line.LastIndexOf((byte)' ');
        if (line.Length < 3 || line[0] is not ((byte)'+' or (byte)'-') || space < 2
            || !uint.TryParse(line[(space + 1)..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var crc)
            || Crc32.HashToUInt32(line[..space]) != crc || !IndexKeys.IsWellFormed(line[1..space]))
        {
            throw new IndexDamagedException($"repository index journal: the record at byte {_read} does not check out (torn or damaged)");
        }

        return (line[0] == (byte)'+', Encoding.ASCII.GetString(line[1..space]));
    }

    private static int Stat(SafeFileHandle handle, out ulong inode)
    {
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var result = StatPath((int)handle.DangerousGetHandle(), string.Empty, AtEmptyPath, StatxIno, out var stat);
            inode = stat.Ino;
            return result;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>The head of <c>struct statx</c> (its layout is the same on every architecture), padded to its full size.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(32)]
        public ulong Ino;
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int OpenFile(string path, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(SafeFileHandle fd, byte[] buffer, nint count);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int StatPath(int directory, string path, int flags, uint mask, out StatxBuffer buffer);
}
