using System.Text.Json.Serialization;
using Airlock.Content.FileSystemStore;

namespace Airlock.Content;

/// <summary>The store's size at one moment.</summary>
public sealed record StorageSample(
    [property: JsonPropertyName("at")] DateTimeOffset At,
    [property: JsonPropertyName("bytes")] long Bytes,
    [property: JsonPropertyName("blobs")] long Blobs);

/// <summary>One garbage collection and what it removed.</summary>
public sealed record CollectionRecord(
    [property: JsonPropertyName("startedAt")] DateTimeOffset StartedAt,
    [property: JsonPropertyName("finishedAt")] DateTimeOffset FinishedAt,
    [property: JsonPropertyName("markedBlobs")] int MarkedBlobs,
    [property: JsonPropertyName("deletedBlobs")] int DeletedBlobs,
    [property: JsonPropertyName("deletedBytes")] long DeletedBytes,
    [property: JsonPropertyName("deletedLinks")] int DeletedLinks,
    [property: JsonPropertyName("deletedUploads")] int DeletedUploads);

/// <summary>
/// What a store remembers about itself, for the console's storage page and <c>/metrics</c>: its size sampled
/// over time (<see cref="SampleCapacity"/> samples: at the registry's default hourly sampling, about 83 days)
/// and the last <see cref="CollectionCapacity"/> garbage collections. Both live in the data directory
/// (<see cref="StoreLayout.HistoryDirectory"/>) as bounded files every serving process appends to.
/// </summary>
public sealed class StoreHistory(StoreLayout layout, IBlobStore blobs, TimeProvider time)
{
    public const int SampleCapacity = 2000;
    public const int CollectionCapacity = 200;

    private readonly HistoryFile<StorageSample> _samples = new(layout.StorageHistory, SampleCapacity, StoreJsonContext.Default.ListStorageSample);
    private readonly HistoryFile<CollectionRecord> _collections = new(layout.CollectionHistory, CollectionCapacity, StoreJsonContext.Default.ListCollectionRecord);
    private readonly Lock _measuring = new();
    private StorageSample? _last;

    public IReadOnlyList<StorageSample> Samples => _samples.Read();

    public IReadOnlyList<CollectionRecord> Collections => _collections.Read();

    /// <summary>
    /// The store's size, measured by walking every blob (the cost grows with the store), or the last
    /// measurement when it is younger than <paramref name="maxAge"/>.
    /// </summary>
    public StorageSample Measure(TimeSpan maxAge)
    {
        lock (_measuring)
        {
            var now = time.GetUtcNow();
            if (_last is { } last && now - last.At < maxAge)
            {
                return last;
            }

            return (_last = Walk());
        }
    }

    private StorageSample Walk()
    {
        var now = time.GetUtcNow();
        long bytes = 0;
        long count = 0;
        foreach (var blob in blobs.List())
        {
            bytes += blob.Size;
            count++;
        }

        return new StorageSample(now, bytes, count);
    }

    /// <summary>Measures the store and records the sample, unless the newest recorded one is younger than <paramref name="spacing"/>.</summary>
    public void Sample(TimeSpan spacing)
    {
        var now = time.GetUtcNow();
        if (spacing > TimeSpan.Zero && _samples.Read() is [.., var newest] && now - newest.At < spacing)
        {
            return;
        }

        // Not the measurement /metrics keeps: that one is as old as its own last look, no older.
        var sample = Walk();
        _samples.Update(samples =>
        {
            // Another process may have sampled meanwhile.
            if (spacing > TimeSpan.Zero && samples is [.., var latest] && sample.At - latest.At < spacing)
            {
                return false;
            }

            samples.Add(sample);
            return true;
        });
    }

    public void RecordCollection(CollectionRecord record) => _collections.Append(record);
}
