using System.Globalization;
using Airlock.Content.Etcd;
using Airlock.Content.Metadata;
using Airlock.IO;
using Microsoft.Extensions.Logging;

namespace Airlock.Content.S3;

/// <summary>
/// A registry's store with its blobs in an S3 bucket (<see cref="S3BlobStore"/>) and its tags, links, revisions,
/// referrers, upload sessions and garbage collection's marks (<see cref="EtcdRepositoryStore"/>,
/// <see cref="S3UploadSessionStore"/>, <see cref="EtcdGarbageCollectionGuard"/>) in etcd, shared by replicas, or without
/// etcd in the data directory (<see cref="LocalMetadata"/>, one replica). Each instance has a metadata lease and
/// a folder of its own under the buffer directory for parts on their way (held by a lock file): opening the store
/// aborts the ingest multipart uploads of leases that are gone and removes the folders nobody holds, which are what
/// dead replicas left.
/// </summary>
public sealed class S3RegistryStore : IRegistryStore
{
    private readonly S3Bucket _bucket;
    private readonly MetadataStore _etcd;
    private readonly S3UploadSessionStore _uploads;
    private readonly S3BlobStore _blobs;
    private readonly FileLock _bufferLock;
    private readonly string _buffers;

    private S3RegistryStore(S3StoreOptions options, S3Bucket bucket, MetadataStore etcd, TimeProvider time, FileLock bufferLock, string buffers, bool exclusive)
    {
        Options = options;
        Exclusive = exclusive;
        _bucket = bucket;
        _etcd = etcd;
        Time = time;
        _bufferLock = bufferLock;
        _buffers = buffers;
        _blobs = new S3BlobStore(bucket, etcd, time, buffers, options.PartSize, options.Redirect ? options.RedirectValidity : null);
        Repositories = new EtcdRepositoryStore(etcd, time);
        _uploads = new S3UploadSessionStore(_blobs, time, buffers, options.PartSize);
        Guard = new EtcdGarbageCollectionGuard(etcd);
        History = new EtcdStoreHistory(etcd);
    }

    public S3StoreOptions Options { get; }

    public string Location => $"{Options.Location}, metadata in {_etcd.Location}";

    public TimeProvider Time { get; }

    public IBlobStore Blobs => _blobs;

    public IRepositoryStore Repositories { get; }

    public IUploadSessionStore Uploads => _uploads;

    public IGarbageCollectionGuard Guard { get; }

    public IStoreHistory History { get; }

    /// <summary>
    /// Replicas sharing etcd may serve the store at any time: no collection can take its grace period as given. A single
    /// replica's store opened for collection with nothing else holding its metadata is exclusive: none can start meanwhile.
    /// </summary>
    public bool Exclusive { get; }

    /// <summary>
    /// Opens the store (creating the bucket when missing), checks that both the object store and the metadata answer, and
    /// removes what dead replicas left. The metadata live in etcd (<see cref="S3StoreOptions.Metadata"/>) or, without it,
    /// in <see cref="S3StoreOptions.MetadataDirectory"/>: then this is the only replica, and it says so.
    /// </summary>
    public static async Task<S3RegistryStore> OpenAsync(S3StoreOptions options, TimeProvider time, ILogger logger, CancellationToken cancellationToken, bool forCollection = false)
    {
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems));
        }

        MetadataStore etcd = options.Metadata is { } shared
            ? EtcdMetadata.Connect(shared, shared.KeyPrefix ?? $"/airlock/{options.Bucket}/{options.Prefix}", time, logger)
            : LocalMetadata.Open(options.MetadataDirectory!, logger);
        var bucket = new S3Bucket(options);
        FileLock? bufferLock = null;
        try
        {
            if (etcd is LocalMetadata local)
            {
                logger.LogWarning(
                    "The store {Store} keeps its tags, links and upload sessions in {Metadata}: this registry is a single replica (a second process on this data directory is refused). A second replica needs every replica started with --metadata etcd://HOST:2379",
                    options.Location,
                    local.Location);
            }

            await bucket.EnsureBucketAsync(cancellationToken).ConfigureAwait(false);
            if (etcd is LocalMetadata recorded)
            {
                await CheckOwnerAsync(recorded, options, cancellationToken).ConfigureAwait(false);
            }

            var lease = await etcd.LeaseAsync(cancellationToken).ConfigureAwait(false);
            Directory.CreateDirectory(options.BufferDirectory);
            var buffers = Path.Combine(options.BufferDirectory, lease.ToString("x", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(buffers);
            bufferLock = FileLock.Acquire(Path.Combine(buffers, "lock"), exclusive: true);
            RemoveDeadBuffers(options.BufferDirectory, buffers, logger);
            await AbortDeadIngestsAsync(bucket, etcd, logger, cancellationToken).ConfigureAwait(false);
            return new S3RegistryStore(options, bucket, etcd, time, bufferLock, buffers, exclusive: forCollection && etcd is LocalMetadata { Alone: true });
        }
        catch
        {
            bufferLock?.Dispose();
            await etcd.DisposeAsync().ConfigureAwait(false);
            bucket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Local metadata describe one bucket and prefix: opened with another <c>--storage</c>, every tag would point at blobs
    /// that are not there. The first open that reached the bucket records which; a later one with another is refused
    /// once the metadata hold anything else (until then a corrected <c>--storage</c> simply takes over).
    /// </summary>
    private static async Task CheckOwnerAsync(LocalMetadata metadata, S3StoreOptions options, CancellationToken cancellationToken)
    {
        const string key = "store";
        var store = $"s3://{options.Bucket}/{options.Prefix}";
        var recorded = await metadata.TxnAsync(new Etcdserverpb.TxnRequest
        {
            Compare = { metadata.Missing(key) },
            Success = { metadata.PutOp(key, Google.Protobuf.ByteString.CopyFromUtf8(store)) },
            Failure = { metadata.GetOp(key) },
        }, cancellationToken).ConfigureAwait(false);
        if (recorded.Succeeded || recorded.Responses[0].ResponseRange.Kvs[0] is not { } kv || kv.Value.ToStringUtf8() is not { } owner || owner == store)
        {
            return;
        }

        var everything = await metadata.RangeAsync(new Etcdserverpb.RangeRequest { Key = metadata.Key(string.Empty), RangeEnd = Google.Protobuf.ByteString.CopyFrom(0), CountOnly = true }, cancellationToken).ConfigureAwait(false);
        var taken = everything.Count == 1 && (await metadata.TxnAsync(new Etcdserverpb.TxnRequest
        {
            Compare = { metadata.Unchanged(key, kv.ModRevision) },
            Success = { metadata.PutOp(key, Google.Protobuf.ByteString.CopyFromUtf8(store)) },
        }, cancellationToken).ConfigureAwait(false)).Succeeded;
        if (!taken)
        {
            throw new InvalidOperationException(
                $"{metadata.Location} holds the metadata of {owner}, not of {store}: give --storage the bucket and prefix of {owner}, or another --data-dir for {store}");
        }
    }

    /// <summary>Buffer folders whose lock nobody holds belong to instances that are gone (this machine's replicas only).</summary>
    private static void RemoveDeadBuffers(string root, string own, ILogger logger)
    {
        foreach (var folder in Directory.EnumerateDirectories(root))
        {
            if (string.Equals(folder, own, StringComparison.Ordinal))
            {
                continue;
            }

            using var held = FileLock.TryAcquire(Path.Combine(folder, "lock"), exclusive: true, createDirectory: false);
            if (held is null)
            {
                continue;
            }

            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException ex)
            {
                logger.LogWarning(ex, "Could not remove the part buffers {Folder} of a replica that is gone", folder);
            }
        }
    }

    /// <summary>Aborts the multipart uploads of writers whose replica's lease is gone (it died or was stopped mid-write).</summary>
    private static async Task AbortDeadIngestsAsync(S3Bucket bucket, MetadataStore etcd, ILogger logger, CancellationToken cancellationToken)
    {
        var prefix = bucket.Key(S3BlobStore.IngestPrefix);
        var alive = new Dictionary<long, bool>();
        var aborted = 0;
        await foreach (var (key, uploadId, _) in bucket.ListMultipartAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            var owner = key[prefix.Length..].Split('/')[0];
            if (!long.TryParse(owner, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var lease))
            {
                continue;
            }

            if (!alive.TryGetValue(lease, out var live))
            {
                live = alive[lease] = await etcd.LeaseAliveAsync(lease, cancellationToken).ConfigureAwait(false);
            }

            if (!live)
            {
                await bucket.AbortMultipartAsync(key, uploadId, cancellationToken).ConfigureAwait(false);
                aborted++;
            }
        }

        if (aborted > 0)
        {
            logger.LogInformation("Aborted {Count} multipart uploads left by replicas that are gone", aborted);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _uploads.DisposeAsync().ConfigureAwait(false);
        await _etcd.DisposeAsync().ConfigureAwait(false);
        _bucket.Dispose();
        _bufferLock.Dispose();

        // A writer still open keeps its part file (as a crash would); the next instance to open removes the folder.
        if (Directory.EnumerateFiles(_buffers).All(f => Path.GetFileName(f) == "lock"))
        {
            try
            {
                Directory.Delete(_buffers, recursive: true);
            }
            catch (IOException)
            {
                // Removed by the next instance to open.
            }
        }
    }
}
