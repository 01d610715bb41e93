using Microsoft.Extensions.Logging;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// A registry's storage under one data directory: the blob store, the repository store, upload sessions
/// and the guard that lets garbage collection run beside pushes. Opening it cleans temp files a crash left.
/// </summary>
public sealed class RegistryStorage : IAsyncDisposable
{
    private RegistryStorage(StoreLayout layout, TimeProvider time)
    {
        Layout = layout;
        Time = time;
        Blobs = new FileSystemBlobStore(layout, time);
        Repositories = new FileSystemRepositoryStore(layout, time);
        Uploads = new UploadSessionStore(layout, time);
    }

    public StoreLayout Layout { get; }

    public TimeProvider Time { get; }

    public IBlobStore Blobs { get; }

    public IRepositoryStore Repositories { get; }

    public UploadSessionStore Uploads { get; }

    public GarbageCollectionGuard Guard { get; } = new();

    public static RegistryStorage Open(string dataDirectory, TimeProvider time, ILogger logger)
    {
        var layout = new StoreLayout(dataDirectory);
        foreach (var directory in new[] { layout.BlobsDirectory, layout.IngestDirectory, layout.UploadsDirectory, layout.RepositoriesDirectory })
        {
            Directory.CreateDirectory(directory);
        }

        // Ingest temp files belong to requests of an earlier process; none can still be in flight.
        var stale = 0;
        foreach (var file in Directory.EnumerateFiles(layout.IngestDirectory))
        {
            try
            {
                File.Delete(file);
                stale++;
            }
            catch (IOException ex)
            {
                logger.LogWarning(ex, "Could not remove stale ingest file {Path}", file);
            }
        }

        if (stale > 0)
        {
            logger.LogInformation("Removed {Count} stale ingest files from {Directory}", stale, layout.IngestDirectory);
        }

        return new RegistryStorage(layout, time);
    }

    public ValueTask DisposeAsync() => Uploads.DisposeAsync();
}
