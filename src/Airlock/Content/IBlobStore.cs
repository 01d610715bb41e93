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

    /// <summary>A small blob (a manifest) read whole; null when absent or larger than <paramref name="maxBytes"/>.</summary>
    Task<byte[]?> ReadSmallAsync(Digest digest, int maxBytes, CancellationToken cancellationToken);

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
