using Airlock.Content;
using Airlock.Content.FileSystemStore;

namespace Airlock.Tests.Content;

public sealed class HistoryFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-history-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private HistoryFile<StorageSample> File(int capacity) =>
        new(Path.Combine(_directory, "history", "storage.json"), capacity, StoreJsonContext.Default.ListStorageSample);

    private static StorageSample Sample(int minute) => new(new DateTimeOffset(2026, 1, 1, 0, minute, 0, TimeSpan.Zero), minute * 10, minute);

    [Fact]
    public void Appending_past_the_capacity_keeps_the_newest_and_leaves_no_temp_files()
    {
        var history = File(capacity: 3);
        for (var minute = 1; minute <= 5; minute++)
        {
            history.Append(Sample(minute));
        }

        Assert.Equal([Sample(3), Sample(4), Sample(5)], File(capacity: 3).Read());
        Assert.Equal(["storage.json", "storage.json.lock"], Directory.GetFiles(Path.Combine(_directory, "history")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_damaged_file_reads_as_empty_and_the_next_append_replaces_it()
    {
        var history = File(capacity: 10);
        history.Append(Sample(1));
        System.IO.File.WriteAllText(Path.Combine(_directory, "history", "storage.json"), "[{\"at\":");

        Assert.Empty(history.Read());
        history.Append(Sample(2));
        Assert.Equal([Sample(2)], history.Read());
    }
}
