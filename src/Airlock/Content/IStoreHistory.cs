using System.Text.Json.Serialization;
using Airlock.Distribution;

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

/// <summary>One recorded <c>airlock images load</c>: when, by whom, from which file, which images.</summary>
public sealed record LoadRecord(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("loadedAt")] DateTimeOffset LoadedAt,
    [property: JsonPropertyName("user")] string? User,
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("images")] IReadOnlyList<LoadedImage> Images);

/// <summary>
/// What a store remembers about itself, for the console's storage and bundles pages: its size sampled over time,
/// its garbage collections and the image loads clients reported. Each is a bounded list, oldest first, kept with
/// the store (every replica or process serving it appends, none loses another's record) and trimmed to its newest
/// <see cref="SampleCapacity"/>, <see cref="CollectionCapacity"/> and <see cref="LoadCapacity"/> records.
/// </summary>
public interface IStoreHistory
{
    /// <summary>Samples kept: at the registry's default hourly sampling, about 83 days.</summary>
    const int SampleCapacity = 2000;

    const int CollectionCapacity = 200;

    const int LoadCapacity = 1000;

    ValueTask<IReadOnlyList<StorageSample>> ListSamplesAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Appends <paramref name="sample"/> unless the newest kept sample is less than <paramref name="spacing"/> older
    /// (another process sampled meanwhile); false when it was not appended. Checked and appended at once.
    /// </summary>
    ValueTask<bool> AddSampleAsync(StorageSample sample, TimeSpan spacing, CancellationToken cancellationToken);

    ValueTask<IReadOnlyList<CollectionRecord>> ListCollectionsAsync(CancellationToken cancellationToken);

    ValueTask AddCollectionAsync(CollectionRecord record, CancellationToken cancellationToken);

    ValueTask<IReadOnlyList<LoadRecord>> ListLoadsAsync(CancellationToken cancellationToken);

    ValueTask AddLoadAsync(LoadRecord record, CancellationToken cancellationToken);
}

/// <summary>Measuring and sampling built on the contracts, so every store gets them alike.</summary>
public static class StoreSampling
{
    /// <summary>The store's size now, by walking every blob (the cost grows with the store).</summary>
    public static async ValueTask<StorageSample> MeasureAsync(this IBlobStore blobs, TimeProvider time, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        long bytes = 0;
        long count = 0;
        await foreach (var blob in blobs.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            bytes += blob.Size;
            count++;
        }

        return new StorageSample(now, bytes, count);
    }

    /// <summary>
    /// Measures the store and records the sample, unless the newest recorded one is younger than
    /// <paramref name="spacing"/> (then not even the walk is paid); zero records always.
    /// </summary>
    public static async ValueTask SampleAsync(this IRegistryStore store, TimeSpan spacing, CancellationToken cancellationToken)
    {
        var history = store.History;
        if (spacing > TimeSpan.Zero && await history.ListSamplesAsync(cancellationToken).ConfigureAwait(false) is [.., var newest]
            && store.Time.GetUtcNow() - newest.At < spacing)
        {
            return;
        }

        var sample = await store.Blobs.MeasureAsync(store.Time, cancellationToken).ConfigureAwait(false);
        await history.AddSampleAsync(sample, spacing, cancellationToken).ConfigureAwait(false);
    }
}
