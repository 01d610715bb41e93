using System.Buffers;
using System.Security.Cryptography;
using Airlock.IO;
using Airlock.Oci;
using Microsoft.Win32.SafeHandles;

namespace Airlock.Content;

/// <summary>
/// One blob write as a transaction, the way containerd ingests content: bytes go to a temp file in an
/// ingest folder while they are hashed; <see cref="CommitAsync"/> checks the digest the writer claimed
/// (never trusting it), fsyncs, renames atomically into place and fsyncs the folder. Readers never see a
/// half-written blob; a crash leaves only a temp file for start-up to clean.
/// </summary>
/// <remarks>
/// A push should take the time the disk needs to write the blob, so <see cref="CopyFromAsync"/> keeps the disk
/// busy from the first megabyte on and the CPU off its path: each buffer received is hashed on one thread and
/// written on another while the next ones are received (on two cores, the receive, the hash and the client
/// run side by side). Where the file system allows it the writes are O_DIRECT (<see cref="DirectWriteSize"/> aligned
/// blocks): the disk takes them straight from the buffer, with no copy into the page cache — on the reference
/// VM, copying into new page-cache pages cost more CPU than everything else in a push together, and with
/// several pushes or a busy machine it was the bottleneck (dd conv=fsync 3–4.7 s for 512 MiB where
/// oflag=direct took 0.5–0.8 s) — and the commit's fsync only flushes the disk's cache and the metadata.
/// Elsewhere (and for unaligned pieces: the tail, the start of a chunk that continues an unaligned upload)
/// writes go through the page cache, and every <see cref="WritebackWindow"/> bytes writeback of the new window
/// is started (<see cref="FileSystemDurability.StartWriteback"/>) with an fdatasync beside the writes
/// (<see cref="FileSystemDurability.FlushData"/>), so the commit's fsync finds only the tail. Either way the
/// commit fsyncs everything before the rename.
/// </remarks>
public sealed class BlobIngest : IAsyncDisposable
{
    /// <summary>
    /// Bytes per read from the source and per write to the file. Small enough to stay in a core's cache
    /// between the copy from the socket, the write and the hash: 2 MiB buffers cost ~40% more CPU per push
    /// than 256 KiB ones (measured, bench/RESULTS.md), 64 and 128 KiB were no better.
    /// </summary>
    internal const int BufferSize = 256 << 10;

    /// <summary>Writeback (and a background flush) is started per this many bytes written through the page cache.</summary>
    internal const long WritebackWindow = 16 << 20;

    /// <summary>
    /// Bytes per O_DIRECT write. With one write in flight at a time, 1 MiB writes ran at the disk's speed on the
    /// reference VM (dd oflag=direct, 512 MiB: 0.45–0.8 s), 256 KiB ones at half of it. The disk reads them by
    /// DMA, so their size costs no cache misses.
    /// </summary>
    internal const int DirectWriteSize = 1 << 20;

    /// <summary>Buffers being written or waiting to be while the next one is received.</summary>
    private const int BuffersInFlight = 4;

    // EINVAL, as .NET reports errno in HResult on Unix.
    private const int InvalidArgument = 22;

    private readonly FileStream _file;
    private readonly IncrementalHash _hash;
    private long _writebackStarted;
    private Task _flushing = Task.CompletedTask;
    private SafeFileHandle? _direct;
    private bool _directTried;
    private bool _suspended;

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
    public static Task<BlobIngest> ResumeAsync(string tempPath, CancellationToken cancellationToken, string algorithm = Digest.Sha256Algorithm) =>
        RehashAsync(tempPath, algorithm, cancellationToken);

    /// <summary>
    /// Re-opens an ingest <see cref="SuspendAsync">suspended</see> by an earlier request and goes on from its
    /// hash state, or re-hashes the file when the state is missing or no longer matches it (another process
    /// wrote to it, or it was cut short).
    /// </summary>
    public static async Task<BlobIngest> ResumeAsync(string tempPath, SuspendedIngest? suspended, CancellationToken cancellationToken)
    {
        if (suspended?.TakeHash(tempPath) is not { } state)
        {
            return await RehashAsync(tempPath, Digest.Sha256Algorithm, cancellationToken).ConfigureAwait(false);
        }

        FileStream file;
        try
        {
            file = OpenExisting(tempPath, FileOptions.None);
        }
        catch
        {
            state.Hash.Dispose();
            throw;
        }

        if (RandomAccess.GetLength(file.SafeFileHandle) == state.Length)
        {
            return new BlobIngest(tempPath, file, state.Hash, state.Length);
        }

        await file.DisposeAsync().ConfigureAwait(false);
        state.Hash.Dispose();
        return await RehashAsync(tempPath, Digest.Sha256Algorithm, cancellationToken).ConfigureAwait(false);
    }

    private static FileStream OpenExisting(string tempPath, FileOptions options) => new(tempPath, new FileStreamOptions
    {
        Mode = FileMode.Open,
        Access = FileAccess.ReadWrite,
        Share = FileShare.Read,
        Options = options,
        BufferSize = 0,
    });

    private static async Task<BlobIngest> RehashAsync(string tempPath, string algorithm, CancellationToken cancellationToken)
    {
        var file = OpenExisting(tempPath, FileOptions.SequentialScan);
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
    /// once more than <paramref name="maxLength"/> bytes in total would be held. The buffers the source fills are
    /// hashed on one thread and written on another, each in order, while the next ones are received. When
    /// this returns (or throws) nothing is in flight, and the file holds exactly the bytes hashed: on a failed or
    /// cancelled read, what arrived of the current buffer is written too, so an upload can resume.
    /// </summary>
    public async Task<long> CopyFromAsync(Stream source, CancellationToken cancellationToken, long maxLength = long.MaxValue)
    {
        var direct = OpenDirect();
        var size = direct is null ? BufferSize : DirectWriteSize;
        var buffers = new AlignedBuffer[BuffersInFlight];
        var written = new Task[BuffersInFlight];
        var hashed = new Task[BuffersInFlight];
        var writing = Task.CompletedTask;
        var hashing = Task.CompletedTask;
        var start = Length;
        var offset = Length;
        var slot = 0;
        var filled = 0;
        try
        {
            for (var i = 0; i < BuffersInFlight; i++)
            {
                buffers[i] = AlignedBuffer.Rent(size);
                written[i] = hashed[i] = Task.CompletedTask;
            }

            var ended = false;
            while (!ended)
            {
                // The buffer's previous write and hash must be done before it is filled again.
                await written[slot].ConfigureAwait(false);
                await hashed[slot].ConfigureAwait(false);
                var buffer = buffers[slot];

                // A file whose end is not aligned (a chunked upload goes on where its last chunk ended) first gets
                // the piece that realigns it; every buffer after that is whole blocks at an aligned offset.
                var misaligned = (int)(offset % AlignedBuffer.Alignment);
                var target = misaligned == 0 ? size : AlignedBuffer.Alignment - misaligned;
                while (filled < target)
                {
                    var read = await source.ReadAsync(buffer.Memory[filled..target], cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        ended = true;
                        break;
                    }

                    if (offset + filled + read > maxLength)
                    {
                        throw new BlobTooLargeException(maxLength);
                    }

                    filled += read;
                }

                if (filled > 0)
                {
                    written[slot] = writing = WriteAfterAsync(writing, buffer, filled, offset);
                    hashed[slot] = hashing = HashAfterAsync(hashing, buffer, filled);
                    offset += filled;
                    filled = 0;
                    slot = (slot + 1) % BuffersInFlight;
                }
            }

            await writing.ConfigureAwait(false);
            await hashing.ConfigureAwait(false);
            Length = offset;
            return offset - start;
        }
        catch
        {
            await writing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await hashing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (writing.IsCompletedSuccessfully && hashing.IsCompletedSuccessfully)
            {
                // The source failed (or the limit was reached): keep what it sent of the current buffer. After a
                // failed write the ingest's state is unknown; the caller drops it.
                if (filled > 0)
                {
                    var rest = buffers[slot].Memory.Span[..filled];
                    WriteAt(rest, offset);
                    _hash.AppendData(rest);
                    offset += filled;
                }

                Length = offset;
            }

            throw;
        }
        finally
        {
            foreach (var buffer in buffers)
            {
                buffer?.Return();
            }
        }
    }

    /// <summary>Hashes a buffer once the one before it is hashed, on another core than the receive when there is one.</summary>
    private Task HashAfterAsync(Task previous, AlignedBuffer buffer, int count) => Task.Run(async () =>
    {
        await previous.ConfigureAwait(false);
        _hash.AppendData(buffer.Memory.Span[..count]);
    });

    /// <summary>Writes a buffer once the write before it is done (writes go out in order, one at a time).</summary>
    private Task WriteAfterAsync(Task previous, AlignedBuffer buffer, int count, long offset) => Task.Run(async () =>
    {
        await previous.ConfigureAwait(false);
        WriteAt(buffer.Memory.Span[..count], offset);
    });

    /// <summary>Appends bytes already in memory (a manifest, a pull-through chunk): written, then hashed.</summary>
    private void Append(ReadOnlySpan<byte> data)
    {
        WriteAt(data, Length, direct: false);
        Length += data.Length;
        _hash.AppendData(data);
    }

    /// <summary>
    /// Writes whole aligned blocks of an <see cref="AlignedBuffer"/> with O_DIRECT when the file allows it, anything
    /// else through the page cache, keeping its writeback going.
    /// </summary>
    private void WriteAt(ReadOnlySpan<byte> data, long offset, bool direct = true)
    {
        // (Memory not from an AlignedBuffer may be misaligned: such writes never go direct.)
        if (direct && _direct is { } handle && offset % AlignedBuffer.Alignment == 0 && data.Length % AlignedBuffer.Alignment == 0)
        {
            try
            {
                RandomAccess.Write(handle, data, offset);
                return;
            }
            catch (IOException ex) when (ex.HResult == InvalidArgument)
            {
                // The file system took the O_DIRECT open but not the write (it needs a larger alignment): the page
                // cache it is, for this write and the rest of the ingest.
                CloseDirect();
            }
        }

        RandomAccess.Write(_file.SafeFileHandle, data, offset);
        var end = offset + data.Length;
        if (end - _writebackStarted >= WritebackWindow)
        {
            FileSystemDurability.StartWriteback(_file.SafeFileHandle, _writebackStarted, end - _writebackStarted);
            _writebackStarted = end;
            if (_flushing.IsCompleted)
            {
                // Only an fdatasync empties the disk's own write cache; one runs beside the writes at a time
                // so that the commit's fsync finds little left to do.
                var file = _file.SafeFileHandle;
                _flushing = Task.Run(() => FileSystemDurability.FlushData(file), CancellationToken.None);
            }
        }
    }

    private SafeFileHandle? OpenDirect()
    {
        if (!_directTried)
        {
            _directTried = true;
            _direct = FileSystemDurability.OpenForDirectWrite(TempPath);
        }

        return _direct;
    }

    private void CloseDirect()
    {
        _direct?.Dispose();
        _direct = null;
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
        CloseDirect();
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
        CloseDirect();
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

    /// <summary>
    /// Closes the file but keeps it and hands over the hash state (a chunked upload waiting for its next
    /// request): a session between requests holds no file descriptor, however many are left abandoned.
    /// The ingest is finished afterwards; <see cref="ResumeAsync(string, SuspendedIngest?, CancellationToken)"/> goes on.
    /// </summary>
    public async ValueTask<SuspendedIngest> SuspendAsync()
    {
        await _flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        CloseDirect();
        await _file.DisposeAsync().ConfigureAwait(false);
        _suspended = true;
        return new SuspendedIngest(TempPath, _hash, Length);
    }

    /// <summary>Closes the file but keeps it (a chunked upload waiting for its next PATCH).</summary>
    public async ValueTask DisposeAsync()
    {
        await _flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (!_suspended)
        {
            _hash.Dispose();
        }

        CloseDirect();
        await _file.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// The hash state of a <see cref="BlobIngest.SuspendAsync">suspended</see> ingest: what it takes to go on
/// appending without re-reading the file. Holds no file; dispose it when the ingest will not be resumed.
/// </summary>
public sealed class SuspendedIngest : IDisposable
{
    private IncrementalHash? _hash;

    internal SuspendedIngest(string tempPath, IncrementalHash hash, long length)
    {
        TempPath = tempPath;
        _hash = hash;
        Length = length;
    }

    public string TempPath { get; }

    public long Length { get; }

    /// <summary>The hash state, once, when it belongs to <paramref name="tempPath"/>.</summary>
    internal (IncrementalHash Hash, long Length)? TakeHash(string tempPath)
    {
        var hash = Interlocked.Exchange(ref _hash, null);
        if (hash is null)
        {
            return null;
        }

        if (!string.Equals(tempPath, TempPath, StringComparison.Ordinal))
        {
            hash.Dispose();
            return null;
        }

        return (hash, Length);
    }

    public void Dispose() => Interlocked.Exchange(ref _hash, null)?.Dispose();
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
