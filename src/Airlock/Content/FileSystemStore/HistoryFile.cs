using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Airlock.IO;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// A bounded list of records in one JSON file under <see cref="StoreLayout.HistoryDirectory"/>: appending
/// keeps the newest <see cref="Capacity"/> and rewrites the file atomically (temp file, fsync, rename, fsync
/// the folder) under an exclusive lock file, so every process serving the store (and <c>registry gc</c>)
/// appends without losing another's record, and a reader sees the old list or the new one, never half
/// (<see cref="AtomicFile"/>).
/// A file that cannot be parsed (a damaged disk) reads as empty and is replaced by the next append.
/// </summary>
public sealed class HistoryFile<T>(string path, int capacity, JsonTypeInfo<List<T>> typeInfo)
{
    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "capacity must be positive");

    /// <summary>The records, oldest first.</summary>
    public IReadOnlyList<T> Read() => ReadList();

    private List<T> ReadList()
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), typeInfo) ?? [];
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return [];
        }
    }

    /// <summary>Appends <paramref name="record"/>, dropping the oldest beyond <see cref="Capacity"/>.</summary>
    public void Append(T record) => Update(records =>
    {
        records.Add(record);
        return true;
    });

    /// <summary>Changes the list under the lock (e.g. append unless the last record is recent) and writes it when <paramref name="change"/> returns true.</summary>
    public void Update(Func<List<T>, bool> change)
    {
        var directory = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        using var held = FileLock.Acquire(path + ".lock", exclusive: true);
        var records = ReadList();
        if (!change(records))
        {
            return;
        }

        if (records.Count > Capacity)
        {
            records.RemoveRange(0, records.Count - Capacity);
        }

        AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(records, typeInfo));
    }
}
