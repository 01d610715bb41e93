using System.Buffers;
using System.Security.Cryptography;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// One blob write as a transaction, the way containerd ingests content: bytes go to a temp file in an
/// ingest folder while they are hashed; <see cref="CommitAsync"/> checks the digest the writer claimed
/// (never trusting it), fsyncs, renames atomically into place and fsyncs the folder. Readers never see a
/// half-written blob; a crash leaves only a temp file for start-up to clean.
/// </summary>
/// <remarks>
/// A push is bound by the disk, so the ingest keeps the disk busy from the first megabytes on instead of
/// leaving all of it to the commit's fsync (about 1.2 s for 512 MiB on the reference machine, where dirty
/// pages are not written back before gigabytes pile up): <see cref="CopyFromAsync"/> receives the next
/// buffer while the previous one is written and hashed on another thread; every
/// <see cref="WritebackWindow"/> bytes writeback of the new window is started
/// (<see cref="FileSystemDurability.StartWriteback"/>) and, unless one is still running, an fdatasync is
/// started beside the writes (<see cref="FileSystemDurability.FlushData"/>; only a flush empties a virtual
/// disk's write cache, which is where the time went). The commit's fsync then finds only the tail. That
/// is a head start, not a durability promise: the commit still fsyncs everything before the rename.
/// </remarks>
public sealed class BlobIngest : IAsyncDisposable
{
    /// <summary>
    /// Bytes per read from the source and per write to the file. Small enough to stay in a core's cache
    /// between the copy from the socket, the write and the hash: 2 MiB buffers cost ~40% more CPU per push
    /// than 256 KiB ones (measured, bench/RESULTS.md), 64 and 128 KiB were no better.
    /// </summary>
    internal const int BufferSize = 256 << 10;

    /// <summary>Writeback (and a background flush) is started per this many bytes written.</summary>
    internal const long WritebackWindow = 16 << 20;

    private readonly FileStream _file;
    private readonly IncrementalHash _hash;
    private long _writebackStarted;
    private Task _flushing = Task.CompletedTask;

    private BlobIngest(string path, FileStream file, IncrementalHash hash, long length)
    {
        TempPath = path;
        _file = file;
        _hash = hash;
        Length = length;
        _writebackStarted = length;
    }

    /// <summary>The temp file the content is written to.</summary>
    public string TempPath { get; }

    /// <summary>Bytes written so far.</summary>
    public long Length { get; private set; }


    /// <summary>Starts a new ingest at <paramref name="tempPath"/> (its folder must exist).</summary>
    public static BlobIngest Start(string tempPath, string algorithm = Digest.Sha256Algorithm)
    {
        var file = new FileStream(tempPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.Read,
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
            Options = FileOptions.SequentialScan,
            BufferSize = 0,
        });
        var hash = Digest.CreateHash(algorithm);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long length = 0;
        try
        {
            int read;
            while ((read = await RandomAccess.ReadAsync(file.SafeFileHandle, buffer.AsMemory(0, BufferSize), length, cancellationToken).ConfigureAwait(false)) > 0)
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

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Append(data.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Copies <paramref name="source"/> to the end of the ingest. Stops with <see cref="BlobTooLargeException"/>
    /// once more than <paramref name="maxLength"/> bytes in total would be held. Reading the next buffer
    /// overlaps writing and hashing the previous one; when this returns (or throws) nothing is in flight.
    /// </summary>
    public async Task<long> CopyFromAsync(Stream source, CancellationToken cancellationToken, long maxLength = long.MaxValue)
    {
        var receiving = ArrayPool<byte>.Shared.Rent(BufferSize);
        var writing = ArrayPool<byte>.Shared.Rent(BufferSize);
        var pending = Task.CompletedTask;
        var start = Length;
        long copied = 0;
        try
        {
            while (true)
            {
                var read = await source.ReadAtLeastAsync(receiving.AsMemory(0, BufferSize), BufferSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                if (start + copied + read > maxLength)
                {
                    throw new BlobTooLargeException(maxLength);
                }

                // The previous buffer must be on file before this one follows it (and before it is reused).
                await pending.ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                copied += read;
                if (read < BufferSize)
                {
                    // The end of the source: the last buffer needs no other thread.
                    Append(receiving.AsSpan(0, read));
                    break;
                }

                var full = receiving;
                pending = Task.Run(() => Append(full.AsSpan(0, read)), CancellationToken.None);
                (receiving, writing) = (writing, receiving);
            }
        }
        finally
        {
            // A failed read must not leave a write running into a file the caller is about to drop.
            await pending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            ArrayPool<byte>.Shared.Return(receiving);
            ArrayPool<byte>.Shared.Return(writing);
        }

        return copied;
    }

    /// <summary>Writes at the end, keeps writeback going and hashes (one caller at a time).</summary>
    private void Append(ReadOnlySpan<byte> data)
    {
        RandomAccess.Write(_file.SafeFileHandle, data, Length);
        Length += data.Length;
        if (Length - _writebackStarted >= WritebackWindow)
        {
            FileSystemDurability.StartWriteback(_file.SafeFileHandle, _writebackStarted, Length - _writebackStarted);
            _writebackStarted = Length;
            if (_flushing.IsCompleted)
            {
                // Only an fdatasync empties the disk's own write cache; one runs beside the writes at a time
                // so that the commit's fsync finds little left to do.
                var file = _file.SafeFileHandle;
                _flushing = Task.Run(() => FileSystemDurability.FlushData(file), CancellationToken.None);
            }
        }

        _hash.AppendData(data);
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

        await _flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        cancellationToken.ThrowIfCancellationRequested();
        _file.Flush(flushToDisk: true);

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
            FileSystemDurability.FsyncDirectory(directory);
        }

        return actual;
    }

    /// <summary>Drops the temp file (an abandoned or failed ingest).</summary>
    public async ValueTask AbortAsync()
    {
        await _flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _file.DisposeAsync().ConfigureAwait(false);
        try
        {
            File.Delete(TempPath);
        }
        catch (IOException)
        {
            // Start-up cleaning removes leftovers; an abort must not mask the original failure.
        }

    }

    /// <summary>Closes the file but keeps it (a chunked upload waiting for its next PATCH).</summary>
    public async ValueTask DisposeAsync()
    {
        await _flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _hash.Dispose();
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
