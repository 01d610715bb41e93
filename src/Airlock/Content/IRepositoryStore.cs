using Airlock.Oci;

namespace Airlock.Content;

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

    /// <summary>
    /// When the repository last changed: a tag set, moved or deleted, a manifest or blob link added or removed
    /// (the console's "last push"); null when it does not exist.
    /// </summary>
    DateTimeOffset? LastChange(string repository);

    /// <summary>Repository names in ordinal order.</summary>
    IReadOnlyList<string> ListRepositories();

    void AddReferrer(string repository, Digest subject, Descriptor referrer);

    void RemoveReferrer(string repository, Digest subject, Digest referrer);

    IReadOnlyList<Descriptor> ListReferrers(string repository, Digest subject);

    /// <summary>
    /// Records, durably, that only authenticated clients may read the repository (it caches a private
    /// pull-through upstream). The mark stays until the repository is deleted from the store.
    /// </summary>
    void MarkAuthenticatedOnly(string repository);

    /// <summary>Repositories marked with <see cref="MarkAuthenticatedOnly"/>, in ordinal order.</summary>
    IReadOnlyList<string> ListAuthenticatedOnly();
}
