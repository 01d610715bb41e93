namespace Airlock.Content;

/// <summary>
/// Everything a registry stores, as its handlers and <see cref="GarbageCollector"/> see it: content-addressed
/// blobs, what each repository holds, resumable upload sessions, and the guard that lets garbage collection run
/// while the registry serves. The filesystem store under a data directory is one implementation; a store whose
/// blobs live in object storage and whose metadata lives in a consensus store (several replicas sharing them) is
/// meant to be another. What every implementation guarantees is written in <c>docs/storage.md</c> and checked by
/// the store contract test suite every implementation runs.
/// </summary>
public interface IRegistryStore : IAsyncDisposable
{
    /// <summary>Where the store is, for logs and messages (a directory, or a bucket and an endpoint).</summary>
    string Location { get; }

    /// <summary>The clock the store stamps times with (grace periods and session activity are measured on it).</summary>
    TimeProvider Time { get; }

    IBlobStore Blobs { get; }

    IRepositoryStore Repositories { get; }

    IUploadSessionStore Uploads { get; }

    IGarbageCollectionGuard Guard { get; }

    /// <summary>The store's size over time, its garbage collections and the loads reported into it (the console's pages).</summary>
    IStoreHistory History { get; }

    /// <summary>
    /// True when the store was opened for collection and no registry serves it meanwhile (nothing can be in flight,
    /// so a collection may take its grace period as given). A store shared by replicas that cannot know this says false.
    /// </summary>
    bool Exclusive { get; }
}
