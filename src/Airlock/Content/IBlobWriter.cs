using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// One blob being written, as a transaction (containerd's content writer): bytes are hashed as they are written,
/// <see cref="CommitAsync"/> compares the digest (never trusting the writer's claim), makes the content durable and
/// only then visible under its digest; <see cref="AbortAsync"/> drops it, and so does disposing a writer that was
/// not committed. One caller at a time.
/// </summary>
public interface IBlobWriter : IAsyncDisposable
{
    /// <summary>Bytes written so far.</summary>
    long Length { get; }

    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>
    /// Copies <paramref name="source"/> to the end; stops with <see cref="BlobTooLargeException"/> once more than
    /// <paramref name="maxLength"/> bytes in total would be held. Returns the bytes copied.
    /// </summary>
    Task<long> CopyFromAsync(Stream source, CancellationToken cancellationToken, long maxLength = long.MaxValue);

    /// <summary>The digest of what was written so far, in the algorithm the writer hashes with.</summary>
    Digest CurrentDigest();

    /// <summary>
    /// A reader of the bytes written so far, for a client served while the blob is still arriving (the caller
    /// knows how far it may read); null when the store keeps no readable copy while writing.
    /// </summary>
    Stream? OpenWritten();

    /// <summary>
    /// Verifies the content against <paramref name="expected"/> (any algorithm; another than the writer's is hashed
    /// once more), makes it durable and visible, and touches it (<see cref="IBlobStore.TouchAsync"/>) when the same
    /// content was stored already. Throws <see cref="DigestMismatchException"/> and stores nothing when it differs.
    /// The writer is finished either way.
    /// </summary>
    Task<Digest> CommitAsync(Digest expected, CancellationToken cancellationToken);

    /// <summary>Drops what was written (a failed or abandoned write).</summary>
    ValueTask AbortAsync();
}
