using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// Content-addressed blobs shared by every repository of a registry (containerd's content store). A blob is
/// written only through an <see cref="IBlobWriter"/> and is visible under its digest (to <see cref="StatAsync"/>,
/// <see cref="OpenReadAsync"/>, <see cref="ListAsync"/>) only once the writer's commit verified it: readers never see
/// part of a blob, and content that does not match its digest is never stored.
/// </summary>
public interface IBlobStore
{
    /// <summary>The stored blob's size and last reference time, or null when it is not stored.</summary>
    ValueTask<BlobInfo?> StatAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>Opens the blob for reading (seekable where the store can), or null when absent.</summary>
    ValueTask<Stream?> OpenReadAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>A small blob (a manifest) read whole; null when absent or larger than <paramref name="maxBytes"/>.</summary>
    Task<byte[]?> ReadSmallAsync(Digest digest, int maxBytes, CancellationToken cancellationToken);

    /// <summary>A local file holding the blob, for zero-copy sends; null for stores without one.</summary>
    string? LocalPath(Digest digest);

    /// <summary>
    /// Starts writing one blob, hashed with <paramref name="algorithm"/> as it is written. Nothing is visible until
    /// <see cref="IBlobWriter.CommitAsync"/>; a writer neither committed nor aborted (a crash) leaves only what the
    /// store removes when it is next opened.
    /// </summary>
    ValueTask<IBlobWriter> BeginWriteAsync(string algorithm, CancellationToken cancellationToken);

    /// <summary>
    /// Starts writing one blob whose digest was announced before its bytes (a monolithic push), hashed with that
    /// digest's algorithm and committed under that digest only. The commit verifies it as any other; a store may place
    /// the bytes under their content address while they arrive, where they stay invisible until then (S3: a multipart
    /// upload completed only once verified, instead of a copy afterwards).
    /// </summary>
    ValueTask<IBlobWriter> BeginWriteAsync(Digest announced, CancellationToken cancellationToken) => BeginWriteAsync(announced.Algorithm, cancellationToken);

    /// <summary>Marks the blob as just referenced, so garbage collection's grace period protects it again.</summary>
    ValueTask TouchAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>Removes the blob (garbage collection only, holding its sweep lease). False when it was not stored.</summary>
    ValueTask<bool> DeleteAsync(Digest digest, CancellationToken cancellationToken);

    /// <summary>Every stored blob, in no particular order.</summary>
    IAsyncEnumerable<BlobInfo> ListAsync(CancellationToken cancellationToken);
}

/// <summary>A stored blob: its size and when it was last written or referenced (what grace periods are measured from).</summary>
public readonly record struct BlobInfo(Digest Digest, long Size, DateTimeOffset LastReferenced);

/// <summary>Writes built on <see cref="IBlobStore.BeginWriteAsync"/>, so every store gets them alike.</summary>
public static class BlobStoreWrites
{
    /// <summary>The blob's size, or null when it is not stored.</summary>
    public static async ValueTask<long?> SizeAsync(this IBlobStore blobs, Digest digest, CancellationToken cancellationToken) =>
        (await blobs.StatAsync(digest, cancellationToken).ConfigureAwait(false))?.Size;

    /// <summary>Streams <paramref name="content"/> in, verified against <paramref name="expected"/> when given; returns its digest.</summary>
    public static async Task<Digest> WriteAsync(this IBlobStore blobs, Stream content, Digest? expected, CancellationToken cancellationToken, long maxLength = long.MaxValue)
    {
        var writer = expected is { } announced
            ? await blobs.BeginWriteAsync(announced, cancellationToken).ConfigureAwait(false)
            : await blobs.BeginWriteAsync(Digest.Sha256Algorithm, cancellationToken).ConfigureAwait(false);
        await using (writer.ConfigureAwait(false))
        {
            try
            {
                await writer.CopyFromAsync(content, cancellationToken, maxLength).ConfigureAwait(false);
            }
            catch
            {
                await writer.AbortAsync().ConfigureAwait(false);
                throw;
            }

            return await writer.CommitAsync(expected ?? writer.CurrentDigest(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes a small blob already in memory (a manifest), verified against <paramref name="expected"/>.</summary>
    public static async Task<Digest> WriteAsync(this IBlobStore blobs, ReadOnlyMemory<byte> content, Digest expected, CancellationToken cancellationToken)
    {
        var writer = await blobs.BeginWriteAsync(expected, cancellationToken).ConfigureAwait(false);
        await using (writer.ConfigureAwait(false))
        {
            try
            {
                await writer.WriteAsync(content, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await writer.AbortAsync().ConfigureAwait(false);
                throw;
            }

            return await writer.CommitAsync(expected, cancellationToken).ConfigureAwait(false);
        }
    }
}
