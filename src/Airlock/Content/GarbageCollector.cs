using System.Collections.Concurrent;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Microsoft.Extensions.Logging;

namespace Airlock.Content;

/// <summary>What one collection found and removed (or, in a dry run, would remove).</summary>
public sealed record GarbageCollectionResult(
    IReadOnlyList<Digest> DeletedBlobs,
    long DeletedBytes,
    IReadOnlyList<(string Repository, Digest Digest)> DeletedLinks,
    IReadOnlyList<string> DeletedUploads,
    int MarkedBlobs,
    bool DryRun);

/// <summary>
/// Online mark and sweep. Mark: every manifest revision of every repository, with its config, layers and
/// (for indexes) child manifests. Sweep: blobs nobody marked, repository links to blobs that repository's
/// manifests do not reference, and abandoned upload sessions, but only those older than the grace period,
/// so a push in flight (blobs up, manifest not yet put) is never broken. The registry keeps serving, in
/// this process or another: each deletion re-checks under <see cref="GarbageCollectionGuard"/> (why that is
/// safe is written there), and digests referenced during the mark are kept.
/// </summary>
/// <remarks>
/// What only age can protect, a blob uploaded for a manifest not yet put, gets more than the grace period
/// asked for whenever a registry may be serving: at least <see cref="MinimumOnlineGrace"/>, and nothing an
/// open upload session's repository links is swept while the session lives (a client pushing an image has
/// a session open for each layer in flight). Upload sessions are kept for <see cref="MinimumUploadIdle"/>
/// at least (they are resumable, even after a restart) and never deleted while a request uses one.
/// Only an exclusive collection (<see cref="RegistryStorage.Exclusive"/>: no registry serving) takes the
/// grace period as given for blobs and links. One collection runs per store at a time; another one is
/// refused with <see cref="GarbageCollectionBusyException"/>.
/// </remarks>
public sealed class GarbageCollector(RegistryStorage storage, TimeSpan grace, ILogger logger)
{
    /// <summary>The least age of an unreferenced blob or link collected while a registry may be serving.</summary>
    public static readonly TimeSpan MinimumOnlineGrace = TimeSpan.FromMinutes(10);

    /// <summary>The least idle time of an upload session collected.</summary>
    public static readonly TimeSpan MinimumUploadIdle = TimeSpan.FromHours(1);

    // Revisions hold only manifests the registry accepted; the cap only guards against a damaged store.
    private const int MaxManifestBytes = 256 << 20;

    public async Task<GarbageCollectionResult> CollectAsync(bool dryRun, CancellationToken cancellationToken)
    {
        var layout = storage.Layout;
        using var collecting = FileLock.TryAcquire(layout.CollectorLock, exclusive: true)
            ?? throw new GarbageCollectionBusyException(layout.Root);

        var now = storage.Time.GetUtcNow();
        var started = now;
        var blobGrace = storage.Exclusive || grace >= MinimumOnlineGrace ? grace : MinimumOnlineGrace;
        if (blobGrace != grace)
        {
            logger.LogInformation(
                "A registry may be serving {Directory}: unreferenced blobs and links younger than {Grace} are kept, not only those younger than the {Asked} asked for",
                layout.Root, blobGrace, grace);
        }

        var cutoff = now - blobGrace;
        var uploadCutoff = now - (grace >= MinimumUploadIdle ? grace : MinimumUploadIdle);
        var guard = storage.Guard;
        var journal = new ReferenceJournal(layout.ReferenceJournal);
        ConcurrentDictionary<Digest, byte> duringMark;

        // The mark starts holding the exclusive lease: no reference is half made, so each one is either on
        // disk for the mark to see or made later and recorded (in memory and in the journal).
        using (await guard.EnterSweepAsync(cancellationToken).ConfigureAwait(false))
        {
            duringMark = guard.BeginMark();
            journal.Begin();
        }

        try
        {
            var marked = new HashSet<Digest>();
            var perRepository = new Dictionary<string, HashSet<Digest>>(StringComparer.Ordinal);
            foreach (var repository in storage.Repositories.ListRepositories())
            {
                var referenced = new HashSet<Digest>();
                foreach (var manifest in storage.Repositories.ListManifestRevisions(repository))
                {
                    referenced.Add(manifest);
                    var document = await ReadManifestAsync(manifest, storage.Repositories.ManifestMediaType(repository, manifest), cancellationToken).ConfigureAwait(false);
                    if (document is null)
                    {
                        continue;
                    }

                    foreach (var child in document.Children)
                    {
                        referenced.Add(child.Digest);
                    }
                }

                perRepository[repository] = referenced;
                marked.UnionWith(referenced);
            }

            // Repositories being pushed to (an upload session alive) keep their unreferenced links and the
            // blobs those name: the image being pushed may be the one that references them.
            var pushing = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (id, lastActivity) in storage.Uploads.List().ToList())
            {
                if (!storage.Exclusive && lastActivity > uploadCutoff && storage.Uploads.RepositoryOf(id) is { } repository)
                {
                    pushing.Add(repository);
                }
            }

            var keptLinks = new HashSet<Digest>();
            foreach (var repository in pushing)
            {
                foreach (var (digest, _) in storage.Repositories.ListBlobLinks(repository))
                {
                    keptLinks.Add(digest);
                }
            }

            var referencedSince = new HashSet<Digest>();
            bool ReferencedSince(Digest digest)
            {
                journal.ReadNew(referencedSince);
                return duringMark.ContainsKey(digest) || referencedSince.Contains(digest);
            }

            var deletedBlobs = new List<Digest>();
            long deletedBytes = 0;
            foreach (var (digest, lastWrite, size) in storage.Blobs.List().ToList())
            {
                if (marked.Contains(digest) || keptLinks.Contains(digest) || lastWrite > cutoff)
                {
                    continue;
                }

                using (await guard.EnterSweepAsync(cancellationToken).ConfigureAwait(false))
                {
                    // Re-check under the guard: referenced or touched since the listing means in use.
                    if (ReferencedSince(digest) || LastWrite(layout.Blob(digest)) is not { } current || current > cutoff)
                    {
                        continue;
                    }

                    if (!dryRun)
                    {
                        storage.Blobs.Delete(digest);
                    }
                }

                deletedBlobs.Add(digest);
                deletedBytes += size;
            }

            var deletedLinks = new List<(string, Digest)>();
            foreach (var (repository, referenced) in perRepository)
            {
                if (pushing.Contains(repository))
                {
                    continue;
                }

                foreach (var (digest, lastWrite) in storage.Repositories.ListBlobLinks(repository).ToList())
                {
                    if (referenced.Contains(digest) || lastWrite > cutoff)
                    {
                        continue;
                    }

                    using (await guard.EnterSweepAsync(cancellationToken).ConfigureAwait(false))
                    {
                        if (ReferencedSince(digest) || LastWrite(layout.BlobLink(repository, digest)) is not { } current || current > cutoff)
                        {
                            continue;
                        }

                        if (!dryRun)
                        {
                            storage.Repositories.UnlinkBlob(repository, digest);
                        }
                    }

                    deletedLinks.Add((repository, digest));
                }
            }

            var deletedUploads = new List<string>();
            foreach (var (id, lastActivity) in storage.Uploads.List().ToList())
            {
                if (lastActivity > uploadCutoff)
                {
                    continue;
                }

                // Deleted only if no request holds it and it is still idle, checked holding its lock.
                if (dryRun || await storage.Uploads.TryDeleteIdleAsync(id, uploadCutoff).ConfigureAwait(false))
                {
                    deletedUploads.Add(id);
                }
            }

            logger.LogInformation(
                "Garbage collection {Mode}: {Marked} blobs in use, {Blobs} blobs ({Bytes} bytes), {Links} links and {Uploads} upload sessions removed",
                dryRun ? "dry run" : "done", marked.Count, deletedBlobs.Count, deletedBytes, deletedLinks.Count, deletedUploads.Count);
            if (!dryRun)
            {
                Record(new CollectionRecord(started, storage.Time.GetUtcNow(), marked.Count, deletedBlobs.Count, deletedBytes, deletedLinks.Count, deletedUploads.Count));
            }

            return new GarbageCollectionResult(deletedBlobs, deletedBytes, deletedLinks, deletedUploads, marked.Count, dryRun);
        }
        finally
        {
            guard.EndMark();
            journal.End();
        }
    }

    /// <summary>Remembers the collection and the store's size after it (the console's storage page); the collection is done whether or not this can be written.</summary>
    private void Record(CollectionRecord record)
    {
        try
        {
            storage.History.RecordCollection(record);
            storage.History.Sample(TimeSpan.Zero);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not record the garbage collection in {Directory}: {Reason}", storage.Layout.HistoryDirectory, ex.Message);
        }
    }

    private async Task<ManifestDocument?> ReadManifestAsync(Digest digest, string? mediaType, CancellationToken cancellationToken)
    {
        if (await storage.Blobs.ReadSmallAsync(digest, MaxManifestBytes, cancellationToken).ConfigureAwait(false) is not { } content)
        {
            return null;
        }

        try
        {
            return ManifestDocument.Parse(content, mediaType);
        }
        catch (ManifestFormatException ex)
        {
            // Sweeping without knowing this manifest's children could delete blobs it needs.
            throw new InvalidOperationException($"stored manifest {digest} cannot be parsed, so garbage collection stops without deleting anything: {ex.Message}", ex);
        }
    }

    private static DateTimeOffset? LastWrite(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero) : null;
    }
}

/// <summary>Another garbage collection holds the store (the registry's schedule or another <c>airlock registry gc</c>).</summary>
public sealed class GarbageCollectionBusyException(string directory)
    : Exception($"another garbage collection is running on {directory} (the registry's --gc-interval schedule or another `airlock registry gc`); try again when it has finished")
{
    public string Directory { get; } = directory;
}
