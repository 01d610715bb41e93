using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Airlock.IO;
using Google.Protobuf;

namespace Airlock.Content.Metadata;

/// <summary>One change a write made to the durable keys: a key's new value, or its removal (<see cref="Value"/> null).</summary>
internal readonly record struct DurableChange(ByteString Key, ByteString? Value);

/// <summary>A durable key as the snapshot keeps it.</summary>
internal readonly record struct DurableEntry(ByteString Key, ByteString Value, long CreateRevision, long ModRevision, long Version);

/// <summary>
/// How <see cref="LocalMetadata"/> survives a restart or a crash: a snapshot of every durable key (written whole by
/// <see cref="AtomicFile"/>, so it is the old one or the new one) and a journal of the writes since, one record per
/// write, appended and fsynced before the write is answered. A record is <c>length, CRC-32, payload</c>; the payload is
/// the write's revision and its changes. A kill at any point leaves at most one record cut short at the end, which the
/// next open drops (its write was never answered); a record that does not check out anywhere else is damage, and the
/// store refuses to start rather than serve a partial history. Compaction writes a new snapshot and then an empty
/// journal; records at or below the snapshot's revision are skipped, so a crash between the two loses nothing.
/// </summary>
internal sealed class MetadataJournal : IDisposable
{
    private const string SnapshotMagic = "airlock-metadata-snapshot 1\n";
    private const string JournalMagic = "airlock-metadata-journal 1\n";
    private const int RecordHeader = 8;
    private const byte Put = 1;
    private const byte Delete = 2;

    private readonly string _snapshotPath;
    private readonly string _journalPath;
    private FileStream _journal;
    private long _snapshotBytes;

    private MetadataJournal(string directory, FileStream journal, long snapshotBytes)
    {
        Directory = directory;
        _snapshotPath = Path.Combine(directory, "snapshot");
        _journalPath = Path.Combine(directory, "journal");
        _journal = journal;
        _snapshotBytes = snapshotBytes;
    }

    public string Directory { get; }

    /// <summary>Bytes in the journal (with its header).</summary>
    public long Length => _journal.Length;

    /// <summary>Bytes of the last snapshot.</summary>
    public long SnapshotBytes => _snapshotBytes;

    /// <summary>What an open found: the durable keys, the last revision, and the bytes of a torn last record it dropped.</summary>
    public sealed record Recovered(Dictionary<ByteString, DurableEntry> Entries, long Revision, long TornBytes);

    /// <summary>
    /// Opens the snapshot and journal in <paramref name="directory"/> (creating empty ones), replays them, cuts a torn
    /// last record off, and keeps the journal open for appends. Throws <see cref="InvalidDataException"/> naming the file
    /// when either is damaged otherwise.
    /// </summary>
    public static (MetadataJournal Journal, Recovered State) Open(string directory)
    {
        var snapshotPath = Path.Combine(directory, "snapshot");
        var journalPath = Path.Combine(directory, "journal");
        var entries = new Dictionary<ByteString, DurableEntry>();
        long revision = 0;
        long snapshotBytes = 0;
        if (File.Exists(snapshotPath))
        {
            var bytes = File.ReadAllBytes(snapshotPath);
            snapshotBytes = bytes.Length;
            revision = ReadSnapshot(snapshotPath, bytes, entries);
        }

        if (!File.Exists(journalPath))
        {
            AtomicFile.Write(journalPath, Encoding.ASCII.GetBytes(JournalMagic), AtomicFile.Private);
        }

        var journal = new FileStream(journalPath, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0 });
        try
        {
            var content = new byte[journal.Length];
            journal.ReadExactly(content);
            var (end, replayed) = Replay(journalPath, content, revision, entries);
            revision = Math.Max(revision, replayed);
            var torn = content.Length - end;
            if (torn > 0)
            {
                journal.SetLength(end);
                journal.Flush(flushToDisk: true);
            }

            journal.Seek(0, SeekOrigin.End);
            return (new MetadataJournal(directory, journal, snapshotBytes), new Recovered(entries, revision, torn));
        }
        catch
        {
            journal.Dispose();
            throw;
        }
    }

    /// <summary>Appends one write's changes and flushes them to disk before returning.</summary>
    public void Append(long revision, IReadOnlyList<DurableChange> changes)
    {
        var size = 8 + 4;
        foreach (var change in changes)
        {
            size += 1 + 4 + change.Key.Length + (change.Value is { } value ? 4 + value.Length : 0);
        }

        var record = new byte[RecordHeader + size];
        var payload = record.AsSpan(RecordHeader);
        BinaryPrimitives.WriteInt64LittleEndian(payload, revision);
        BinaryPrimitives.WriteInt32LittleEndian(payload[8..], changes.Count);
        var at = 12;
        foreach (var change in changes)
        {
            payload[at++] = change.Value is null ? Delete : Put;
            at = WriteBytes(payload, at, change.Key);
            if (change.Value is { } value)
            {
                at = WriteBytes(payload, at, value);
            }
        }

        BinaryPrimitives.WriteInt32LittleEndian(record, size);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), Crc32.HashToUInt32(payload));
        _journal.Write(record);
        _journal.Flush(flushToDisk: true);
    }

    /// <summary>Writes every durable key as the new snapshot, then starts an empty journal after it.</summary>
    public void Compact(long revision, IEnumerable<DurableEntry> entries)
    {
        using var buffer = new MemoryStream();
        buffer.Write(Encoding.ASCII.GetBytes(SnapshotMagic));
        Span<byte> number = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(number, revision);
        buffer.Write(number);
        foreach (var entry in entries)
        {
            WriteBytes(buffer, entry.Key);
            WriteBytes(buffer, entry.Value);
            foreach (var value in new[] { entry.CreateRevision, entry.ModRevision, entry.Version })
            {
                BinaryPrimitives.WriteInt64LittleEndian(number, value);
                buffer.Write(number);
            }
        }

        BinaryPrimitives.WriteUInt32LittleEndian(number, Crc32.HashToUInt32(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
        buffer.Write(number[..4]);
        AtomicFile.Write(_snapshotPath, buffer.GetBuffer().AsSpan(0, (int)buffer.Length), AtomicFile.Private);
        _snapshotBytes = buffer.Length;

        // The old journal's records are all at or below the snapshot's revision now: replaying them again is harmless.
        AtomicFile.Write(_journalPath, Encoding.ASCII.GetBytes(JournalMagic), AtomicFile.Private);
        var journal = new FileStream(_journalPath, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0 });
        journal.Seek(0, SeekOrigin.End);
        _journal.Dispose();
        _journal = journal;
    }

    public void Dispose() => _journal.Dispose();

    private static long ReadSnapshot(string path, byte[] bytes, Dictionary<ByteString, DurableEntry> entries)
    {
        var magic = Encoding.ASCII.GetBytes(SnapshotMagic);
        if (bytes.Length < magic.Length + 12 || !bytes.AsSpan(0, magic.Length).SequenceEqual(magic)
            || Crc32.HashToUInt32(bytes.AsSpan(0, bytes.Length - 4)) != BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4)))
        {
            throw new InvalidDataException($"{path} is damaged (not a metadata snapshot, or its checksum does not match): restore the data directory from a backup");
        }

        var body = bytes.AsSpan(0, bytes.Length - 4);
        var revision = BinaryPrimitives.ReadInt64LittleEndian(body[magic.Length..]);
        var at = magic.Length + 8;
        while (at < body.Length)
        {
            var key = ReadBytes(body, ref at);
            var value = ReadBytes(body, ref at);
            var create = BinaryPrimitives.ReadInt64LittleEndian(body[at..]);
            var mod = BinaryPrimitives.ReadInt64LittleEndian(body[(at + 8)..]);
            var version = BinaryPrimitives.ReadInt64LittleEndian(body[(at + 16)..]);
            at += 24;
            entries[key] = new DurableEntry(key, value, create, mod, version);
        }

        return revision;
    }

    /// <summary>Applies the journal's records above <paramref name="snapshotRevision"/>; the end of the last whole record and the last revision.</summary>
    private static (int End, long Revision) Replay(string path, byte[] content, long snapshotRevision, Dictionary<ByteString, DurableEntry> entries)
    {
        var magic = Encoding.ASCII.GetBytes(JournalMagic);
        if (content.Length < magic.Length || !content.AsSpan(0, magic.Length).SequenceEqual(magic))
        {
            throw new InvalidDataException($"{path} is not a metadata journal: restore the data directory from a backup");
        }

        var at = magic.Length;
        var revision = snapshotRevision;
        while (at < content.Length)
        {
            if (content.Length - at < RecordHeader)
            {
                return (at, revision);
            }

            var size = BinaryPrimitives.ReadInt32LittleEndian(content.AsSpan(at));
            var end = (long)at + RecordHeader + size;
            if (size < 12 || end > content.Length)
            {
                // Cut short by a kill (or a length itself half written): the last record, its write never answered.
                return (at, revision);
            }

            var payload = content.AsSpan(at + RecordHeader, size);
            if (Crc32.HashToUInt32(payload) != BinaryPrimitives.ReadUInt32LittleEndian(content.AsSpan(at + 4)))
            {
                if (end == content.Length)
                {
                    return (at, revision);
                }

                throw new InvalidDataException($"{path} is damaged at byte {at} (a record that does not check out, with records after it): restore the data directory from a backup");
            }

            var recordRevision = BinaryPrimitives.ReadInt64LittleEndian(payload);
            var count = BinaryPrimitives.ReadInt32LittleEndian(payload[8..]);
            var offset = 12;
            for (var i = 0; i < count; i++)
            {
                var kind = payload[offset++];
                var key = ReadBytes(payload, ref offset);
                var value = kind == Put ? ReadBytes(payload, ref offset) : null;
                if (recordRevision <= snapshotRevision)
                {
                    continue;
                }

                if (value is null)
                {
                    entries.Remove(key);
                }
                else
                {
                    entries[key] = entries.TryGetValue(key, out var old)
                        ? new DurableEntry(key, value, old.CreateRevision, recordRevision, old.Version + 1)
                        : new DurableEntry(key, value, recordRevision, recordRevision, 1);
                }
            }

            revision = Math.Max(revision, recordRevision);
            at = (int)end;
        }

        return (at, revision);
    }

    private static int WriteBytes(Span<byte> target, int at, ByteString bytes)
    {
        BinaryPrimitives.WriteInt32LittleEndian(target[at..], bytes.Length);
        bytes.Span.CopyTo(target[(at + 4)..]);
        return at + 4 + bytes.Length;
    }

    private static void WriteBytes(Stream target, ByteString bytes)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        target.Write(length);
        target.Write(bytes.Span);
    }

    private static ByteString ReadBytes(ReadOnlySpan<byte> source, ref int at)
    {
        var length = BinaryPrimitives.ReadInt32LittleEndian(source[at..]);
        var bytes = ByteString.CopyFrom(source.Slice(at + 4, length));
        at += 4 + length;
        return bytes;
    }
}
