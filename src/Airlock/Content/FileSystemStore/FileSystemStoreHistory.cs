namespace Airlock.Content.FileSystemStore;

/// <summary>
/// The store's history as bounded JSON files under <see cref="StoreLayout.HistoryDirectory"/> (see
/// <see cref="HistoryFile{T}"/>), which every process serving the data directory and <c>registry gc</c> append to.
/// </summary>
public sealed class FileSystemStoreHistory(StoreLayout layout) : IStoreHistory
{
    private readonly HistoryFile<StorageSample> _samples = new(layout.StorageHistory, IStoreHistory.SampleCapacity, StoreJsonContext.Default.ListStorageSample);
    private readonly HistoryFile<CollectionRecord> _collections = new(layout.CollectionHistory, IStoreHistory.CollectionCapacity, StoreJsonContext.Default.ListCollectionRecord);
    private readonly HistoryFile<LoadRecord> _loads = new(layout.LoadHistory, IStoreHistory.LoadCapacity, StoreJsonContext.Default.ListLoadRecord);

    public ValueTask<IReadOnlyList<StorageSample>> ListSamplesAsync(CancellationToken cancellationToken) => ValueTask.FromResult(_samples.Read());

    public ValueTask<bool> AddSampleAsync(StorageSample sample, TimeSpan spacing, CancellationToken cancellationToken)
    {
        var added = false;
        _samples.Update(samples =>
        {
            if (spacing > TimeSpan.Zero && samples is [.., var latest] && sample.At - latest.At < spacing)
            {
                return false;
            }

            samples.Add(sample);
            return added = true;
        });
        return ValueTask.FromResult(added);
    }

    public ValueTask<IReadOnlyList<CollectionRecord>> ListCollectionsAsync(CancellationToken cancellationToken) => ValueTask.FromResult(_collections.Read());

    public ValueTask AddCollectionAsync(CollectionRecord record, CancellationToken cancellationToken)
    {
        _collections.Append(record);
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<LoadRecord>> ListLoadsAsync(CancellationToken cancellationToken) => ValueTask.FromResult(_loads.Read());

    public ValueTask AddLoadAsync(LoadRecord record, CancellationToken cancellationToken)
    {
        _loads.Append(record);
        return ValueTask.CompletedTask;
    }
}
