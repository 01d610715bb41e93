using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// A blob store whose commit takes two steps that cannot be one (an object under the content address, then the record
/// that makes it visible): a commit interrupted between them leaves content nobody sees and no listing names. Garbage
/// collection sweeps it through this, after the grace period, like any other unreferenced blob.
/// </summary>
public interface IUnpublishedBlobs
{
    /// <summary>Content stored under a content address without its record; <see cref="BlobInfo.LastReferenced"/> is when it was written.</summary>
    IAsyncEnumerable<BlobInfo> ListUnpublishedAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Removes the content if it is still unpublished and was written before <paramref name="writtenBefore"/> (both checked
    /// again now; call holding a sweep lease, so no commit is between its two steps). False when it was kept.
    /// </summary>
    ValueTask<bool> DeleteUnpublishedAsync(Digest digest, DateTimeOffset writtenBefore, CancellationToken cancellationToken);
}
