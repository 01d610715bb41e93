using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// What each repository holds: links to the blobs it may read, manifest revisions (with their media type), tags,
/// the referrers index and the authenticated-only mark. Repositories never hold content themselves. A repository
/// exists once anything was written to it. Names reaching a store are validated by the caller and checked again
/// by the store (<see cref="ArgumentException"/>), because a bad name must never reach the storage below. Each
/// write is atomic and durable when it returns, and visible to every reader of the store from then on.
/// </summary>
public interface IRepositoryStore
{
    ValueTask<bool> ExistsAsync(string repository, CancellationToken cancellationToken);

    /// <summary>The repository's link to a blob (with when it was made), or null when it has none.</summary>
    ValueTask<BlobLink?> GetBlobLinkAsync(string repository, Digest digest, CancellationToken cancellationToken);

    /// <summary>Links the blob to the repository, or refreshes the link's time.</summary>
    ValueTask LinkBlobAsync(string repository, Digest digest, CancellationToken cancellationToken);

    ValueTask<bool> UnlinkBlobAsync(string repository, Digest digest, CancellationToken cancellationToken);

    IAsyncEnumerable<BlobLink> ListBlobLinksAsync(string repository, CancellationToken cancellationToken);

    /// <summary>The stored media type of a manifest revision, or null when the repository has none.</summary>
    ValueTask<string?> ManifestMediaTypeAsync(string repository, Digest digest, CancellationToken cancellationToken);

    ValueTask PutManifestRevisionAsync(string repository, Digest digest, string mediaType, CancellationToken cancellationToken);

    ValueTask<bool> DeleteManifestRevisionAsync(string repository, Digest digest, CancellationToken cancellationToken);

    IAsyncEnumerable<Digest> ListManifestRevisionsAsync(string repository, CancellationToken cancellationToken);

    ValueTask<Digest?> ResolveTagAsync(string repository, string tag, CancellationToken cancellationToken);

    /// <summary>Points the tag at the manifest; a reader sees the old or the new digest, never neither.</summary>
    ValueTask SetTagAsync(string repository, string tag, Digest digest, CancellationToken cancellationToken);

    ValueTask<bool> DeleteTagAsync(string repository, string tag, CancellationToken cancellationToken);

    /// <summary>
    /// Up to <paramref name="limit"/> (at least 1) of the repository's tags that sort after <paramref name="last"/>
    /// (all when null) in ordinal order; <paramref name="last"/> need not be a tag. Null when the repository does
    /// not exist. A walk of every tag asks with <see cref="int.MaxValue"/>.
    /// </summary>
    ValueTask<ListingPage?> ListTagsAsync(string repository, string? last, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// When the repository last changed: a tag set, moved or deleted, a manifest revision or blob link added or
    /// removed (the console's "last push"); null when it does not exist. A store may say a later time than the
    /// change (never an earlier one).
    /// </summary>
    ValueTask<DateTimeOffset?> LastChangeAsync(string repository, CancellationToken cancellationToken);

    /// <summary>
    /// A number that changes with every write to the repository, read as up to date as any other read (null when the
    /// repository does not exist, or when the store offers none): what a process read from the repository is still
    /// true while the number stays the same. Stores that replicas share offer it, so each replica can keep manifests it
    /// served and check them with this one read instead of reading tag, revision and content again.
    /// </summary>
    ValueTask<long?> ChangeVersionAsync(string repository, CancellationToken cancellationToken) => ValueTask.FromResult<long?>(null);

    /// <summary>
    /// Up to <paramref name="limit"/> (at least 1) repository names that sort after <paramref name="last"/> (all when
    /// null) in ordinal order, the OCI distribution spec's lexical order; <paramref name="last"/> need not name a
    /// repository (it may have been deleted, or never existed). A walk of every repository asks with <see cref="int.MaxValue"/>.
    /// </summary>
    ValueTask<ListingPage> ListRepositoriesAsync(string? last, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes the repository if it holds nothing: no links, manifest revisions, tags, referrers nor the
    /// authenticated-only mark (garbage collection removes the repositories it emptied). Atomic with every write to
    /// the repository: a write racing the deletion either lands first, and the repository is kept, or lands after it
    /// and creates the repository again. True when it was deleted; false when it holds something or does not exist.
    /// </summary>
    ValueTask<bool> DeleteRepositoryIfEmptyAsync(string repository, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the ordered listings equal to what the repositories hold, for a store that keeps its listings apart from
    /// the repositories (the filesystem store's index, which damage, a crash or a tree restored by hand can leave
    /// behind); a store whose listings are read from the repositories themselves does nothing. Safe while the store is
    /// served by other instances. Garbage collection calls it before it marks, and marks the repositories it read, so
    /// a collection walks the repositories once.
    /// </summary>
    ValueTask<ReconciledListings> ReconcileListingsAsync(CancellationToken cancellationToken);

    ValueTask AddReferrerAsync(string repository, Digest subject, Descriptor referrer, CancellationToken cancellationToken);

    ValueTask RemoveReferrerAsync(string repository, Digest subject, Digest referrer, CancellationToken cancellationToken);

    /// <summary>The manifests whose subject is <paramref name="subject"/>, ordered by digest.</summary>
    ValueTask<IReadOnlyList<Descriptor>> ListReferrersAsync(string repository, Digest subject, CancellationToken cancellationToken);

    /// <summary>
    /// Records, durably, that only authenticated clients may read the repository (it caches a private
    /// pull-through upstream). The mark stays until the repository is deleted from the store.
    /// </summary>
    ValueTask MarkAuthenticatedOnlyAsync(string repository, CancellationToken cancellationToken);

    /// <summary>Repositories marked with <see cref="MarkAuthenticatedOnlyAsync"/>, in ordinal order.</summary>
    ValueTask<IReadOnlyList<string>> ListAuthenticatedOnlyAsync(CancellationToken cancellationToken);
}

/// <summary>
/// What <see cref="IRepositoryStore.ReconcileListingsAsync"/> did: how many names it added to or removed from the
/// listings, and every repository the store held as the repositories themselves said when it read them, in ordinal
/// order (null from a store that did not read them, whose listings are the repositories: list those instead).
/// </summary>
public sealed record ReconciledListings(int Changed, IReadOnlyList<string>? Repositories);

/// <summary>A repository's link to a blob, and when it was made or last refreshed (what grace periods are measured from).</summary>
public readonly record struct BlobLink(Digest Digest, DateTimeOffset LinkedAt);

/// <summary>One page of an ordered listing; <see cref="HasMore"/> when at least one more name follows the last one.</summary>
public sealed record ListingPage(IReadOnlyList<string> Names, bool HasMore)
{
    public static readonly ListingPage Empty = new([], false);

    /// <summary>The page of <paramref name="sorted"/> (ordinal order, no duplicates) after <paramref name="last"/>: a binary search and a copy of the page.</summary>
    public static ListingPage Slice(IReadOnlyList<string> sorted, string? last, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var start = 0;
        if (last is not null)
        {
            // The first name greater than last, whether or not last is in the list.
            var low = 0;
            var high = sorted.Count;
            while (low < high)
            {
                var middle = low + ((high - low) / 2);
                if (string.CompareOrdinal(sorted[middle], last) <= 0)
                {
                    low = middle + 1;
                }
                else
                {
                    high = middle;
                }
            }

            start = low;
        }

        var count = (int)Math.Min(sorted.Count - start, (long)limit);
        var names = new string[count];
        for (var i = 0; i < count; i++)
        {
            names[i] = sorted[start + i];
        }

        return new ListingPage(names, start + count < sorted.Count);
    }
}
