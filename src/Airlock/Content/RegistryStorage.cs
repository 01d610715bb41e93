using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// Content-addressed blobs shared by every repository of a registry. Writes go through
/// <see cref="BlobIngest"/> only; a driver for object storage implements this same contract.
/// </summary>
public interface IBlobStore
{
    /// <summary>The blob's size, or null when it is not stored.</summary>
    ValueTask<long?> SizeAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>Opens the blob for reading (seekable where the driver can), or null when absent.</summary>
    ValueTask<Stream?> OpenReadAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>A local file holding the blob, for zero-copy sends; null for drivers without one.</summary>
    string? LocalPath(Digest digest);

    /// <summary>Streams <paramref name="content"/> in, verifying it against <paramref name="expected"/> when given.</summary>
    Task<Digest> WriteAsync(Stream content, Digest? expected, CancellationToken cancellationToken, long maxLength = long.MaxValue);

    /// <summary>Writes a small blob already in memory (a manifest).</summary>
    Task<Digest> WriteAsync(ReadOnlyMemory<byte> content, Digest expected, CancellationToken cancellationToken);

    /// <summary>Commits a finished upload; the ingest is consumed whatever the outcome.</summary>
    Task<Digest> CommitAsync(BlobIngest ingest, Digest expected, CancellationToken cancellationToken);

    /// <summary>Marks the blob as just referenced, so garbage collection's grace period protects it.</summary>
    void Touch(Digest digest);

    void Delete(Digest digest);

    /// <summary>Every stored blob with its last write (or touch) time.</summary>
    IEnumerable<(Digest Digest, DateTimeOffset LastWrite, long Size)> List();
}

/// <summary>
/// What each repository holds: links to the blobs it may read, manifest revisions (with their media
/// type), tags and the referrers index. Repositories never hold content themselves.
/// </summary>
public interface IRepositoryStore
{
    bool Exists(string repository);

    bool HasBlobLink(string repository, Digest digest);

    void LinkBlob(string repository, Digest digest);

    bool UnlinkBlob(string repository, Digest digest);

    IEnumerable<(Digest Digest, DateTimeOffset LastWrite)> ListBlobLinks(string repository);

    /// <summary>The stored media type of a manifest revision, or null when the repository has none.</summary>
    string? ManifestMediaType(string repository, Digest digest);

    void PutManifestRevision(string repository, Digest digest, string mediaType);

    bool DeleteManifestRevision(string repository, Digest digest);

    IEnumerable<Digest> ListManifestRevisions(string repository);

    Digest? ResolveTag(string repository, string tag);

    void SetTag(string repository, string tag, Digest digest);

    bool DeleteTag(string repository, string tag);

    /// <summary>Tags in ordinal order, or null when the repository does not exist.</summary>
    IReadOnlyList<string>? ListTags(string repository);

    /// <summary>Repository names in ordinal order.</summary>
    IReadOnlyList<string> ListRepositories();

    void AddReferrer(string repository, Digest subject, Descriptor referrer);

    void RemoveReferrer(string repository, Digest subject, Digest referrer);

    IReadOnlyList<Descriptor> ListReferrers(string repository, Digest subject);
}
