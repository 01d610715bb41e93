using Airlock.IO;
using Microsoft.Extensions.Logging;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// A registry's store under one data directory (<c>&lt;data-dir&gt;/registry/</c>, laid out by
/// <see cref="StoreLayout"/>, the same on disk since the first release): the blob store, the repository store,
/// upload sessions and the guard that lets garbage collection run beside pushes. Every process that serves it
/// holds <see cref="StoreLayout.ServingLock"/> shared; the first one in (holding it exclusively for a moment)
/// cleans the temp files a crash left, which no other process can then be writing.
/// </summary>
public sealed class FileSystemRegistryStore : IRegistryStore
{
    private readonly FileLock? _serving;
    private readonly FileSystemUploadSessionStore _uploads;

    private FileSystemRegistryStore(StoreLayout layout, TimeProvider time, FileLock? serving, bool exclusive, RepositoryIndex index)
    {
        Layout = layout;
        Time = time;
        var blobs = new FileSystemBlobStore(layout, time);
        Blobs = blobs;
        Index = index;
        Repositories = new FileSystemRepositoryStore(layout, time, index);
        _uploads = new FileSystemUploadSessionStore(layout, time, blobs);
        Guard = new FileSystemGarbageCollectionGuard(layout);
        History = new FileSystemStoreHistory(layout);
        _serving = serving;
        Exclusive = exclusive;
    }

    public StoreLayout Layout { get; }

    public string Location => Layout.Root;

    public TimeProvider Time { get; }

    public IBlobStore Blobs { get; }

    public IRepositoryStore Repositories { get; }

    public IUploadSessionStore Uploads => _uploads;

    public IGarbageCollectionGuard Guard { get; }

    public IStoreHistory History { get; }

    /// <summary>The ordered index the listings read (for tests that look at it, or hold a write half done).</summary>
    internal RepositoryIndex Index { get; }

    /// <summary>
    /// True when no registry serves this store while it is open (opened by <see cref="OpenForCollection"/>
    /// and no serving process was there; a registry starting meanwhile waits). Then nothing can be in flight
    /// and a collection may be exact.
    /// </summary>
    public bool Exclusive { get; }

    /// <summary>Opens the store to serve it. Several processes may serve one store; start-up waits while an offline collection runs.</summary>
    public static FileSystemRegistryStore Open(string dataDirectory, TimeProvider time, ILogger logger)
    {
        var layout = Prepare(dataDirectory);
        var serving = FileLock.TryAcquire(layout.ServingLock, exclusive: true);
        var alone = serving is not null;
        if (alone)
        {
            // Nobody else has the store open: temp files there are leftovers of a dead process.
            CleanLeftovers(layout, logger);
        }
        else if ((serving = FileLock.TryAcquire(layout.ServingLock, exclusive: false)) is null)
        {
            logger.LogWarning("Waiting for the garbage collection that holds {Directory} to finish", layout.Root);
            serving = FileLock.Acquire(layout.ServingLock, exclusive: false);
        }

        try
        {
            var index = RepositoryIndex.Open(layout, alone, logger);
            if (alone)
            {
                serving!.Downgrade();
            }

            return new FileSystemRegistryStore(layout, time, serving, exclusive: false, index);
        }
        catch
        {
            serving!.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the store for <c>airlock registry gc</c>: exclusively when no registry serves it (see
    /// <see cref="Exclusive"/>), otherwise beside the serving processes, coordinated by the
    /// <see cref="FileSystemGarbageCollectionGuard"/>.
    /// </summary>
    public static FileSystemRegistryStore OpenForCollection(string dataDirectory, TimeProvider time, ILogger logger)
    {
        var layout = Prepare(dataDirectory);
        var exclusive = FileLock.TryAcquire(layout.ServingLock, exclusive: true);
        if (exclusive is not null)
        {
            CleanLeftovers(layout, logger);
        }

        try
        {
            return new FileSystemRegistryStore(layout, time, exclusive, exclusive is not null, RepositoryIndex.Open(layout, alone: exclusive is not null, logger));
        }
        catch
        {
            exclusive?.Dispose();
            throw;
        }
    }

    private static StoreLayout Prepare(string dataDirectory)
    {
        var layout = new StoreLayout(dataDirectory);
        foreach (var directory in new[] { layout.BlobsDirectory, layout.IngestDirectory, layout.UploadsDirectory, layout.RepositoriesDirectory, layout.LocksDirectory })
        {
            Directory.CreateDirectory(directory);
        }

        return layout;
    }

    /// <summary>Removes what a dead process left; call only holding the serving lock exclusively.</summary>
    private static void CleanLeftovers(StoreLayout layout, ILogger logger)
    {
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

        // A journal left by a collector that died would only grow; one still running keeps its lock.
        using var collector = FileLock.TryAcquire(layout.CollectorLock, exclusive: true);
        if (collector is not null)
        {
            new ReferenceJournal(layout.ReferenceJournal).End();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _uploads.DisposeAsync().ConfigureAwait(false);
        await Index.DisposeAsync().ConfigureAwait(false);
        _serving?.Dispose();
    }
}
