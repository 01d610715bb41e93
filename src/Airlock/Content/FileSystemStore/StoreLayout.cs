using Airlock.Oci;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// The one place that maps registry content to paths under <c>&lt;data-dir&gt;/registry/</c>, shaped like
/// distribution's filesystem driver: global blobs by digest, per-repository link files, tags, upload
/// sessions and the referrers index. Names reaching here are validated; this re-checks, because a bad
/// name would become a path outside the store.
/// </summary>
public sealed class StoreLayout
{
    public StoreLayout(string dataDirectory)
    {
        Root = Path.GetFullPath(Path.Combine(dataDirectory, "registry"));
    }

    public string Root { get; }

    public string BlobsDirectory => Path.Combine(Root, "blobs");

    /// <summary>Temp files of blob writes that are not upload sessions; start-up empties it.</summary>
    public string IngestDirectory => Path.Combine(Root, "ingest");

    public string UploadsDirectory => Path.Combine(Root, "uploads");

    public string RepositoriesDirectory => Path.Combine(Root, "repositories");

    /// <summary>Lock files coordinating the processes that open this store (see <see cref="FileSystemGarbageCollectionGuard"/>).</summary>
    public string LocksDirectory => Path.Combine(Root, "locks");

    /// <summary>Shared while a reference is created, exclusive while garbage collection deletes.</summary>
    public string ReferenceLock => Path.Combine(LocksDirectory, "references.lock");

    /// <summary>Exclusive for the length of one garbage collection.</summary>
    public string CollectorLock => Path.Combine(LocksDirectory, "collector.lock");

    /// <summary>Shared by every serving process; exclusive means nobody serves (start-up cleaning, offline collection).</summary>
    public string ServingLock => Path.Combine(LocksDirectory, "serving.lock");

    /// <summary>Digests referenced while a collection marks; exists only while one runs.</summary>
    public string ReferenceJournal => Path.Combine(LocksDirectory, "referenced.journal");

    /// <summary>The ordered index of repositories and tags (<see cref="RepositoryIndex"/>): derived from the tree, rebuilt from it when in doubt.</summary>
    public string IndexDirectory => Path.Combine(Root, "index");

    /// <summary>The index's sorted keys as of its last compaction.</summary>
    public string IndexSnapshot => Path.Combine(IndexDirectory, "snapshot");

    /// <summary>The index's changes since the snapshot, appended by every process that serves the store.</summary>
    public string IndexJournal => Path.Combine(IndexDirectory, "journal");

    /// <summary>One lock file per process that has the store open, held exclusively while it does: one left unlocked is a process that died.</summary>
    public string IndexSessionsDirectory => Path.Combine(IndexDirectory, "sessions");

    /// <summary>Shared while a process appends to the index journal or opens the index, exclusive while one compacts or rebuilds it.</summary>
    public string IndexLock => Path.Combine(LocksDirectory, "index.lock");

    /// <summary>
    /// Shared while a write may create a repository or a tag, exclusive while one deletes a tag or the repository, so a
    /// deletion and the index record that follows it never interleave with a write to the same repository. Repositories
    /// share <see cref="RepositoryIndex.RepositoryLockCount"/> lock files by a hash of their name (<paramref name="stripe"/>).
    /// </summary>
    public string RepositoryLock(int stripe) => Path.Combine(LocksDirectory, "repositories", stripe.ToString("x2", System.Globalization.CultureInfo.InvariantCulture) + ".lock");

    /// <summary>What the registry remembers about itself for its console: bounded JSON records (see <see cref="HistoryFile{T}"/>).</summary>
    public string HistoryDirectory => Path.Combine(Root, "history");

    /// <summary>Garbage collections and what each removed.</summary>
    public string CollectionHistory => Path.Combine(HistoryDirectory, "collections.json");

    /// <summary>The store's size sampled over time.</summary>
    public string StorageHistory => Path.Combine(HistoryDirectory, "storage.json");

    /// <summary><c>airlock images load</c> runs into this registry, as their clients reported them.</summary>
    public string LoadHistory => Path.Combine(HistoryDirectory, "loads.json");

    public string Blob(Digest digest) => Path.Combine(BlobsDirectory, digest.Algorithm, digest.Encoded[..2], digest.Encoded);

    public string IngestFile() => Path.Combine(IngestDirectory, Guid.NewGuid().ToString("N"));

    public string UploadDirectory(string id) => Path.Combine(UploadsDirectory, CheckUploadId(id));

    public string UploadData(string id) => Path.Combine(UploadDirectory(id), "data");

    public string UploadState(string id) => Path.Combine(UploadDirectory(id), "state.json");

    /// <summary>Shared while a request uses the session; garbage collection deletes it only holding it exclusively.</summary>
    public string UploadLock(string id) => Path.Combine(UploadDirectory(id), "lock");

    public string Repository(string repository) => Path.Combine(RepositoriesDirectory, CheckRepository(repository));

    /// <summary>
    /// An empty file whose presence means only authenticated clients may read the repository. Repository path
    /// components cannot start with <c>_</c>, so it never collides with a nested repository.
    /// </summary>
    public const string AuthenticatedOnlyMarker = "_authenticated_only";

    public string AuthenticatedOnly(string repository) => Path.Combine(Repository(repository), AuthenticatedOnlyMarker);

    /// <summary>
    /// The entries of a repository's folder that belong to the repository itself; the names of nested repositories'
    /// folders never start with <c>_</c>.
    /// </summary>
    public static readonly string[] RepositoryEntries = ["_layers", "_manifests", "_referrers", AuthenticatedOnlyMarker];

    /// <summary>
    /// Whether the tree holds the repository: its folder has an entry of its own (a folder that only holds nested
    /// repositories is not one). The tree is what the index is checked against.
    /// </summary>
    public bool IsRepository(string repository)
    {
        var folder = Repository(repository);
        foreach (var entry in RepositoryEntries)
        {
            if (Path.Exists(Path.Combine(folder, entry)))
            {
                return true;
            }
        }

        return false;
    }

    public string BlobLinksDirectory(string repository) => Path.Combine(Repository(repository), "_layers");

    public string BlobLink(string repository, Digest digest) => Path.Combine(BlobLinksDirectory(repository), digest.Algorithm, digest.Encoded);

    public string RevisionsDirectory(string repository) => Path.Combine(Repository(repository), "_manifests", "revisions");

    public string Revision(string repository, Digest digest) => Path.Combine(RevisionsDirectory(repository), digest.Algorithm, digest.Encoded);

    public string TagsDirectory(string repository) => Path.Combine(Repository(repository), "_manifests", "tags");

    public string Tag(string repository, string tag) =>
        ImageReference.IsValidTag(tag) ? Path.Combine(TagsDirectory(repository), tag) : throw new ArgumentException($"tag \"{tag}\" is invalid", nameof(tag));

    public string ReferrersDirectory(string repository, Digest subject) =>
        Path.Combine(Repository(repository), "_referrers", subject.Algorithm, subject.Encoded);

    public string Referrer(string repository, Digest subject, Digest referrer) =>
        Path.Combine(ReferrersDirectory(repository, subject), referrer.Algorithm + "-" + referrer.Encoded);

    /// <summary>Parses a file name under <c>&lt;algorithm&gt;/</c> back into a digest (null for strays).</summary>
    public static Digest? DigestFromPath(string algorithm, string encoded) =>
        Digest.TryParse(algorithm + ":" + encoded, out var digest) ? digest : null;

    private static string CheckRepository(string repository) =>
        ImageReference.IsValidRepository(repository) ? repository : throw new ArgumentException($"repository \"{repository}\" is invalid", nameof(repository));

    private static string CheckUploadId(string id) =>
        Guid.TryParseExact(id, "D", out _) ? id : throw new ArgumentException($"upload id \"{id}\" is invalid", nameof(id));
}
