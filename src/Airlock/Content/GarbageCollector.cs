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
    bool DryRun)
{
    /// <summary>Repositories left with nothing once their links went (no manifest, tag, referrer nor mark), removed with them.</summary>
    public IReadOnlyList<string> DeletedRepositories { get; init; } = [];
}

/// <summary>
/// Online mark and sweep. Mark: every manifest revision of every repository, with its config, layers and
/// (for indexes) child manifests. Sweep: blobs nobody marked (and content an interrupted commit left unpublished,
/// <see cref="IUnpublishedBlobs"/>), repository links to blobs that repository's
/// manifests do not reference, and abandoned upload sessions, but only those older than the grace period,
/// so a push in flight (blobs up, manifest not yet put) is never broken. The registry keeps serving, in
/// this process or another: each deletion re-checks under the store's <see cref="IGarbageCollectionGuard"/> (why
/// that is safe is written there), and digests referenced during the mark are kept. It sees the store only through
/// <see cref="IRegistryStore"/>, so it collects any store alike.
/// </summary>
/// <remarks>
/// What only age can protect, a blob uploaded for a manifest not yet put, gets more than the grace period
/// asked for whenever a registry may be serving: at least <see cref="MinimumOnlineGrace"/>, and nothing an
/// open upload session's repository links is swept while the session lives (a client pushing an image has
/// a session open for each layer in flight). Upload sessions are kept for <see cref="MinimumUploadIdle"/>
/// at least (they are resumable, even after a restart) and never deleted while a request uses one.
/// Only an exclusive collection (<see cref="IRegistryStore.Exclusive"/>: no registry serving) takes the
/// grace period as given for blobs and links. One collection runs per store at a time; another one is
/// refused with <see cref="GarbageCollectionBusyException"/>.
/// </remarks>
public sealed class GarbageCollector(IRegistryStore store, TimeSpan grace, ILogger logger)
{
    /// <summary>The least age of an unreferenced blob or link collected while a registry may be serving.</summary>
    public static readonly TimeSpan MinimumOnlineGrace = TimeSpan.FromMinutes(10);

    /// <summary>The least idle time of an upload session collected.</summary>
    public static readonly TimeSpan MinimumUploadIdle = TimeSpan.FromHours(1);

    // Revisions hold only manifests the registry accepted; the cap only guards against a damaged store.
    private const int MaxManifestBytes = 256 << 20;

    public async Task<GarbageCollectionResult> CollectAsync(bool dryRun, CancellationToken cancellationToken)
    {
        var now = store.Time.GetUtcNow();
        var blobGrace = store.Exclusive || grace >= MinimumOnlineGrace ? grace : MinimumOnlineGrace;
        var cutoff = now - blobGrace;
        var uploadCutoff = now - (grace >= MinimumUploadIdle ? grace : MinimumUploadIdle);

        // The run begins excluding references: none is half made, so each one is either stored for the mark to
        // see or made later and noted for the sweep.
        var run = await store.Guard.TryBeginCollectionAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new GarbageCollectionBusyException(store.Location);
        await using (run.ConfigureAwait(false))
        {
            if (blobGrace != grace)
            {
                logger.LogInformation(
                    "A registry may be serving {Directory}: unreferenced blobs and links younger than {Grace} are kept, not only those younger than the {Asked} asked for",
                    store.Location, blobGrace, grace);
            }

            var repositories = store.Repositories;

            // Listings kept apart from the repositories (the filesystem store's index) are made equal to them first:
            // the mark walks the listing, and a repository it missed (restored by hand behind the index) would lose
            // its blobs.
            var reconciled = await repositories.ReconcileListingsAsync(cancellationToken).ConfigureAwait(false);
            if (reconciled > 0)
            {
                logger.LogWarning("The repository listings of {Directory} differed from the repositories by {Count} names; repaired before marking", store.Location, reconciled);
            }

            var marked = new HashSet<Digest>();
            var perRepository = new Dictionary<string, HashSet<Digest>>(StringComparer.Ordinal);
            foreach (var repository in (await repositories.ListRepositoriesAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false)).Names)
            {
                var referenced = new HashSet<Digest>();
                await foreach (var manifest in repositories.ListManifestRevisionsAsync(repository, cancellationToken).ConfigureAwait(false))
                {
                    referenced.Add(manifest);
                    var mediaType = await repositories.ManifestMediaTypeAsync(repository, manifest, cancellationToken).ConfigureAwait(false);
                    if (await ReadManifestAsync(manifest, mediaType, cancellationToken).ConfigureAwait(false) is not { } document)
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

            // Repositories being pushed to (an upload session alive, on any replica) keep their unreferenced links
            // and the blobs those name: the image being pushed may be the one that references them.
            var pushing = new HashSet<string>(StringComparer.Ordinal);
            var sessions = new List<UploadSessionInfo>();
            await foreach (var session in store.Uploads.ListAsync(cancellationToken).ConfigureAwait(false))
            {
                sessions.Add(session);
                if (!store.Exclusive && session.LastActivity > uploadCutoff)
                {
                    pushing.Add(session.Repository);
                }
            }

            var keptLinks = new HashSet<Digest>();
            foreach (var repository in pushing)
            {
                await foreach (var link in repositories.ListBlobLinksAsync(repository, cancellationToken).ConfigureAwait(false))
                {
                    keptLinks.Add(link.Digest);
                }
            }

            var blobs = new List<BlobInfo>();
            await foreach (var blob in store.Blobs.ListAsync(cancellationToken).ConfigureAwait(false))
            {
                blobs.Add(blob);
            }

            var deletedBlobs = new List<Digest>();
            long deletedBytes = 0;
            foreach (var (digest, size, lastReferenced) in blobs)
            {
                if (marked.Contains(digest) || keptLinks.Contains(digest) || lastReferenced > cutoff)
                {
                    continue;
                }

                var sweep = await run.EnterSweepAsync(cancellationToken).ConfigureAwait(false);
                await using (sweep.ConfigureAwait(false))
                {
                    // Re-checked under the sweep lease: referenced or touched since the listing means in use.
                    if (await sweep.ReferencedSinceBeginAsync(digest, cancellationToken).ConfigureAwait(false)
                        || await store.Blobs.StatAsync(digest, cancellationToken).ConfigureAwait(false) is not { } current
                        || current.LastReferenced > cutoff)
                    {
                        continue;
                    }

                    if (!dryRun)
                    {
                        await store.Blobs.DeleteAsync(digest, cancellationToken).ConfigureAwait(false);
                    }
                }

                deletedBlobs.Add(digest);
                deletedBytes += size;
            }

            // Content a commit left without making it visible (interrupted between its two steps) is named by no listing
            // above; it goes after the same grace period, checked again under the sweep lease (no commit is half done then).
            if (store.Blobs is IUnpublishedBlobs unpublished)
            {
                var leftovers = new List<BlobInfo>();
                await foreach (var blob in unpublished.ListUnpublishedAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (blob.LastReferenced <= cutoff)
                    {
                        leftovers.Add(blob);
                    }
                }

                foreach (var (digest, size, _) in leftovers)
                {
                    var sweep = await run.EnterSweepAsync(cancellationToken).ConfigureAwait(false);
                    await using (sweep.ConfigureAwait(false))
                    {
                        if (!dryRun && !await unpublished.DeleteUnpublishedAsync(digest, cutoff, cancellationToken).ConfigureAwait(false))
                        {
                            continue;
                        }
                    }

                    deletedBlobs.Add(digest);
                    deletedBytes += size;
                }
            }

            var deletedLinks = new List<(string, Digest)>();
            foreach (var (repository, referenced) in perRepository)
            {
                if (pushing.Contains(repository))
                {
                    continue;
                }

                var links = new List<BlobLink>();
                await foreach (var link in repositories.ListBlobLinksAsync(repository, cancellationToken).ConfigureAwait(false))
                {
                    links.Add(link);
                }

                foreach (var (digest, linkedAt) in links)
                {
                    if (referenced.Contains(digest) || linkedAt > cutoff)
                    {
                        continue;
                    }

                    var sweep = await run.EnterSweepAsync(cancellationToken).ConfigureAwait(false);
                    await using (sweep.ConfigureAwait(false))
                    {
                        if (await sweep.ReferencedSinceBeginAsync(digest, cancellationToken).ConfigureAwait(false)
                            || await repositories.GetBlobLinkAsync(repository, digest, cancellationToken).ConfigureAwait(false) is not { } current
                            || current.LinkedAt > cutoff)
                        {
                            continue;
                        }

                        if (!dryRun)
                        {
                            await repositories.UnlinkBlobAsync(repository, digest, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    deletedLinks.Add((repository, digest));
                }
            }

            // A repository with no manifest left whose links all went is empty: it leaves the catalog. The store deletes
            // it only if it holds nothing at that moment (a tag, referrer or mark keeps it; a write racing the deletion
            // lands before it, or after it and creates the repository again).
            var deletedRepositories = new List<string>();
            var authenticatedOnly = dryRun ? new HashSet<string>(await repositories.ListAuthenticatedOnlyAsync(cancellationToken).ConfigureAwait(false), StringComparer.Ordinal) : [];
            var linksGone = dryRun ? deletedLinks.ToHashSet() : [];
            foreach (var (repository, referenced) in perRepository)
            {
                if (referenced.Count > 0 || pushing.Contains(repository))
                {
                    continue;
                }

                if (dryRun)
                {
                    var linksLeft = await repositories.ListBlobLinksAsync(repository, cancellationToken)
                        .AnyAsync(l => !linksGone.Contains((repository, l.Digest)), cancellationToken).ConfigureAwait(false);
                    var tagsLeft = (await repositories.ListTagsAsync(repository, null, 1, cancellationToken).ConfigureAwait(false))?.Names.Count > 0;
                    if (!linksLeft && !tagsLeft && !authenticatedOnly.Contains(repository))
                    {
                        deletedRepositories.Add(repository);
                    }
                }
                else if (await repositories.DeleteRepositoryIfEmptyAsync(repository, cancellationToken).ConfigureAwait(false))
                {
                    deletedRepositories.Add(repository);
                }
            }

            var deletedUploads = new List<string>();
            foreach (var session in sessions)
            {
                if (session.LastActivity > uploadCutoff)
                {
                    continue;
                }

                // Deleted only if no request holds it and it is still idle, which the store checks holding it.
                if (dryRun || await store.Uploads.TryDeleteIdleAsync(session.Id, uploadCutoff, cancellationToken).ConfigureAwait(false))
                {
                    deletedUploads.Add(session.Id);
                }
            }

            logger.LogInformation(
                "Garbage collection {Mode}: {Marked} blobs in use, {Blobs} blobs ({Bytes} bytes), {Links} links, {Repositories} empty repositories and {Uploads} upload sessions removed",
                dryRun ? "dry run" : "done", marked.Count, deletedBlobs.Count, deletedBytes, deletedLinks.Count, deletedRepositories.Count, deletedUploads.Count);
            if (!dryRun)
            {
                await RecordAsync(new CollectionRecord(now, store.Time.GetUtcNow(), marked.Count, deletedBlobs.Count, deletedBytes, deletedLinks.Count, deletedUploads.Count), cancellationToken)
                    .ConfigureAwait(false);
            }

            return new GarbageCollectionResult(deletedBlobs, deletedBytes, deletedLinks, deletedUploads, marked.Count, dryRun) { DeletedRepositories = deletedRepositories };
        }
    }

    /// <summary>Remembers the collection and the store's size after it (the console's storage page); the collection is done whether or not this can be written.</summary>
    private async Task RecordAsync(CollectionRecord record, CancellationToken cancellationToken)
    {
        try
        {
            await store.History.AddCollectionAsync(record, cancellationToken).ConfigureAwait(false);
            await store.SampleAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not record the garbage collection in the history of {Store}: {Reason}", store.Location, ex.Message);
        }
    }

    private async Task<ManifestDocument?> ReadManifestAsync(Digest digest, string? mediaType, CancellationToken cancellationToken)
    {
        if (await store.Blobs.ReadSmallAsync(digest, MaxManifestBytes, cancellationToken).ConfigureAwait(false) is not { } content)
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
}

/// <summary>Another garbage collection holds the store (the registry's schedule or another <c>airlock registry gc</c>).</summary>
public sealed class GarbageCollectionBusyException(string location)
    : Exception($"another garbage collection is running on {location} (the registry's --gc-interval schedule or another `airlock registry gc`); try again when it has finished")
{
    public string Location { get; } = location;
}
