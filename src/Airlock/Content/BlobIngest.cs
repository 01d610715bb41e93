using System.Buffers;
using System.Security.Cryptography;
using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// One blob write as a transaction, the way containerd ingests content: bytes go to a temp file in an
/// ingest folder while they are hashed; <see cref="CommitAsync"/> checks the digest the writer claimed
/// (never trusting it), fsyncs, renames atomically into place and fsyncs the folder. Readers never see a
/// half-written blob; a crash leaves only a temp file for start-up to clean.
/// </summary>
public sealed class BlobIngest : IAsyncDisposable
{
    private const int BufferSize = 1 << 20;
    private readonly FileStream _file;
    private readonly IncrementalHash _hash;
    private bool _committed;

    private BlobIngest(string path, FileStream file, IncrementalHash hash, long length)
    {
        TempPath = path;
        _file = file;
        _hash = hash;
        Length = length;
    }

    /// <summary>The temp file the content is written to.</summary>
    public string TempPath { get; }

    /// <summary>Bytes written so far.</summary>
    public long Length { get; private set; }

    /// <summary>
    /// fsync the blob and its folder at commit (default). Off only for scratch stores deleted after use (an
    /// archive spooled for one import): there a crash loses nothing that matters, and the fsyncs cost the
    /// import as much as the copy itself.
    /// </summary>
    public bool Durable { get; set; } = true;

    /// <summary>Starts a new ingest at <paramref name="tempPath"/> (its folder must exist).</summary>
    public static BlobIngest Start(string tempPath, string algorithm = Digest.Sha256Algorithm)
    {
        var file = new FileStream(tempPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.Read,
            Options = FileOptions.Asynchronous,
            BufferSize = 0,
        });
        return new BlobIngest(tempPath, file, Digest.CreateHash(algorithm), 0);
    }

    /// <summary>
    /// Re-opens an ingest left by an earlier request or process and re-hashes what it holds, so uploads
    /// survive restarts without persisting hash state.
    /// </summary>
    public static async Task<BlobIngest> ResumeAsync(string tempPath, CancellationToken cancellationToken, string algorithm = Digest.Sha256Algorithm)
    {
        var file = new FileStream(tempPath, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.ReadWrite,
            Share = FileShare.Read,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            BufferSize = 0,
        });
        var hash = Digest.CreateHash(algorithm);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long length = 0;
        try
        {
            int read;
            while ((read = await file.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                length += read;
            }
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            hash.Dispose();
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return new BlobIngest(tempPath, file, hash, length);
    }

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        _hash.AppendData(data.Span);
        await _file.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        Length += data.Length;
    }

    /// <summary>
    /// Copies <paramref name="source"/> to the end of the ingest. Stops with <see cref="BlobTooLargeException"/>
    /// once more than <paramref name="maxLength"/> bytes in total would be held.
    /// </summary>
    public async Task<long> CopyFromAsync(Stream source, CancellationToken cancellationToken, long maxLength = long.MaxValue)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long copied = 0;
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (Length + read > maxLength)
                {
                    throw new BlobTooLargeException(maxLength);
                }

                await WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                copied += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return copied;
    }

    /// <summary>The digest of everything written so far (the ingest can continue afterwards).</summary>
    public Digest CurrentDigest(string algorithm = Digest.Sha256Algorithm) => Digest.FromHash(algorithm, _hash.GetCurrentHash());

    /// <summary>
    /// Verifies the content against <paramref name="expected"/> (when given), fsyncs it and renames it to
    /// <paramref name="finalPath"/>. If the final path already exists the content is identical by
    /// construction and the temp file is dropped. Returns the computed digest.
    /// </summary>
    public async Task<Digest> CommitAsync(Digest? expected, string finalPath, CancellationToken cancellationToken, long? expectedSize = null)
    {
        var algorithm = expected?.Algorithm ?? Digest.Sha256Algorithm;
        var actual = CurrentDigest(algorithm);
        if (expectedSize is { } size && size != Length)
        {
            throw new DigestMismatchException(expected ?? actual, actual, $"size {Length} does not match the expected {size}");
        }

        if (expected is { } wanted && wanted != actual)
        {
            throw new DigestMismatchException(wanted, actual, null);
        }

        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (Durable)
        {
            _file.Flush(flushToDisk: true);
        }

        await _file.DisposeAsync().ConfigureAwait(false);

        var directory = Path.GetDirectoryName(finalPath)!;
        Directory.CreateDirectory(directory);
        if (File.Exists(finalPath))
        {
            File.Delete(TempPath);
        }
        else
        {
            File.Move(TempPath, finalPath, overwrite: true);
            if (Durable)
            {
                FileSystemDurability.FsyncDirectory(directory);
            }
        }

        _committed = true;
        return actual;
    }

    /// <summary>Drops the temp file (an abandoned or failed ingest).</summary>
    public async ValueTask AbortAsync()
    {
        await _file.DisposeAsync().ConfigureAwait(false);
        try
        {
            File.Delete(TempPath);
        }
        catch (IOException)
        {
            // Start-up cleaning removes leftovers; an abort must not mask the original failure.
        }

        _committed = true;
    }

    /// <summary>Closes the file but keeps it (a chunked upload waiting for its next PATCH).</summary>
    public async ValueTask DisposeAsync()
    {
        _hash.Dispose();
        if (!_committed)
        {
            await _file.FlushAsync().ConfigureAwait(false);
        }

        await _file.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>Content whose digest (or size) differs from what was claimed for it.</summary>
public sealed class DigestMismatchException : Exception
{
    public DigestMismatchException(Digest expected, Digest actual, string? detail)
        : base(detail is null
            ? $"content digest {actual} does not match the expected {expected}"
            : $"content for {expected}: {detail}")
    {
        Expected = expected;
        Actual = actual;
    }

    public Digest Expected { get; }

    public Digest Actual { get; }
}

/// <summary>Content longer than the limit set for it.</summary>
public sealed class BlobTooLargeException(long limit) : Exception($"content is larger than the limit of {limit} bytes")
{
    public long Limit { get; } = limit;
}
