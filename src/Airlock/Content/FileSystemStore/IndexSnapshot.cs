using System.Buffers;
using System.Globalization;
using System.IO.Hashing;
using System.Text;
using Airlock.IO;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// The index's keys as of its last compaction, sorted in ordinal order: one array of their bytes and one of where each
/// starts, so a lookup is a binary search and a page a copy of the keys that follow (no object per key). The file is
/// text, one key a line between a header and a trailer that holds the CRC-32 of everything before it:
/// <code>
/// airlock-index 2 GENERATION COUNT
/// alibrary/private
/// rlibrary/alpine
/// tlibrary/alpine:3.20
/// end 1a2b3c4d
/// </code>
/// </summary>
internal sealed class IndexSnapshot
{
    private const string Magic = "airlock-index 2 ";
    private const string TrailerStart = "end ";

    private readonly byte[] _data;
    private readonly int[] _starts;

    private IndexSnapshot(long generation, byte[] data, int[] starts)
    {
        Generation = generation;
        _data = data;
        _starts = starts;
    }

    /// <summary>Which compaction or rebuild wrote it; the journal that follows it names the same one.</summary>
    public long Generation { get; }

    public int Count => _starts.Length - 1;

    public static IndexSnapshot Empty(long generation) => new(generation, [], [0]);

    /// <summary>The snapshot of <paramref name="sortedKeys"/> (ordinal order, no duplicates), as it would be read back.</summary>
    public static IndexSnapshot From(long generation, IReadOnlyList<string> sortedKeys)
    {
        var data = new byte[sortedKeys.Sum(k => k.Length)];
        var starts = new int[sortedKeys.Count + 1];
        var at = 0;
        for (var i = 0; i < sortedKeys.Count; i++)
        {
            starts[i] = at;
            at += Encoding.ASCII.GetBytes(sortedKeys[i], data.AsSpan(at));
        }

        starts[^1] = at;
        return new IndexSnapshot(generation, data, starts);
    }

    public string KeyAt(int index) => Encoding.ASCII.GetString(Key(index));

    /// <summary>The position of the first key greater than <paramref name="key"/> (<see cref="Count"/> when none is).</summary>
    public int UpperBound(string key)
    {
        var low = 0;
        var high = Count;
        while (low < high)
        {
            var middle = low + ((high - low) / 2);
            if (IndexKeys.Compare(Key(middle), key) <= 0)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    public bool Contains(string key)
    {
        var position = UpperBound(key) - 1;
        return position >= 0 && IndexKeys.Compare(Key(position), key) == 0;
    }

    /// <summary>Whether the key at <paramref name="index"/> starts with <paramref name="prefix"/>.</summary>
    public bool StartsWith(int index, string prefix)
    {
        var key = Key(index);
        return key.Length >= prefix.Length && IndexKeys.Compare(key[..prefix.Length], prefix) == 0;
    }

    /// <summary>Reads the snapshot at <paramref name="path"/>; null when there is none, <see cref="IndexDamagedException"/> when it cannot be trusted.</summary>
    public static IndexSnapshot? Read(string path)
    {
        byte[] file;
        try
        {
            file = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }

        // The trailer: "end XXXXXXXX\n", the CRC-32 of every byte before it.
        var trailerLength = TrailerStart.Length + 9;
        if (file.Length < trailerLength || file[^1] != (byte)'\n'
            || !file.AsSpan(file.Length - trailerLength).StartsWith(Encoding.ASCII.GetBytes(TrailerStart))
            || !uint.TryParse(file.AsSpan(file.Length - 9, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var crc)
            || Crc32.HashToUInt32(file.AsSpan(0, file.Length - trailerLength)) != crc)
        {
            throw new IndexDamagedException($"{path}: its checksum does not match (torn or damaged)");
        }

        var body = file.AsSpan(0, file.Length - trailerLength);
        var headerEnd = body.IndexOf((byte)'\n');
        var header = headerEnd < 0 ? string.Empty : Encoding.ASCII.GetString(body[..headerEnd]);
        var fields = header.StartsWith(Magic, StringComparison.Ordinal) ? header[Magic.Length..].Split(' ') : [];
        if (fields.Length != 2
            || !long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var generation)
            || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            throw new IndexDamagedException($"{path}: not an index snapshot (header \"{header}\")");
        }

        // Keys are kept without their line ends, packed.
        var lines = body[(headerEnd + 1)..];
        var data = new byte[Math.Max(0, lines.Length - count)];
        var starts = new int[count + 1];
        var at = 0;
        for (var i = 0; i < count; i++)
        {
            var end = lines.IndexOf((byte)'\n');
            if (end <= 1 || at + end > data.Length || !IndexKeys.IsWellFormed(lines[..end]) || (i > 0 && lines[..end].SequenceCompareTo(data.AsSpan(starts[i - 1], at - starts[i - 1])) <= 0))
            {
                throw new IndexDamagedException($"{path}: key {i + 1} of {count} is missing, malformed or out of order");
            }

            starts[i] = at;
            lines[..end].CopyTo(data.AsSpan(at));
            at += end;
            lines = lines[(end + 1)..];
        }

        if (!lines.IsEmpty)
        {
            throw new IndexDamagedException($"{path}: more lines than the {count} keys its header counts");
        }

        starts[count] = at;
        return new IndexSnapshot(generation, data, starts);
    }

    /// <summary>Writes <paramref name="sortedKeys"/> as the snapshot of <paramref name="generation"/>, atomically and durably.</summary>
    public static void Write(string path, long generation, IReadOnlyCollection<string> sortedKeys)
    {
        var buffer = new ArrayBufferWriter<byte>(64 + sortedKeys.Sum(k => k.Length + 1));
        Append(buffer, string.Create(CultureInfo.InvariantCulture, $"{Magic}{generation} {sortedKeys.Count}\n"));
        foreach (var key in sortedKeys)
        {
            Append(buffer, key);
            Append(buffer, "\n");
        }

        var crc = Crc32.HashToUInt32(buffer.WrittenSpan);
        Append(buffer, string.Create(CultureInfo.InvariantCulture, $"{TrailerStart}{crc:x8}\n"));
        AtomicFile.Write(path, buffer.WrittenSpan);
    }

    private static void Append(ArrayBufferWriter<byte> buffer, string text) =>
        buffer.Advance(Encoding.ASCII.GetBytes(text, buffer.GetSpan(text.Length)));

    private ReadOnlySpan<byte> Key(int index) => _data.AsSpan(_starts[index], _starts[index + 1] - _starts[index]);
}

/// <summary>An index file that cannot be trusted (a torn write, damage on disk, another format): the index is rebuilt from the tree.</summary>
internal sealed class IndexDamagedException(string message) : Exception(message);
