using System.Buffers;
using System.Threading.Channels;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Registry.PullThrough;

/// <summary>
/// One download of a blob from an upstream, shared by every request that misses on it meanwhile
/// (single-flight). The upstream's bytes are read once, unverified, and go through the store's
/// <see cref="IBlobWriter"/>, whose hash (computed as it writes) is the one verification; the writer's commit then
/// makes the blob visible.
/// <list type="bullet">
/// <item>The request that started the download gets the bytes handed over in memory as they are written (a
/// tee): no second read of what was just written. The download never waits for that client: when it falls
/// more than <see cref="TeeDepth"/> buffers behind (or went away) it is dropped from the tee and reads on from
/// the temp file, as every later request does.</item>
/// <item>Requests that join later read the growing temp file behind the writer (<see cref="IBlobWriter.OpenWritten"/>,
/// the page cache usually): they get the bytes as soon as they are on file instead of waiting for the whole blob, at
/// the cost of one copy from the page cache each, and share the one download. With a store that keeps no readable
/// copy while writing they wait for the stored blob instead.</item>
/// <item>Nobody gets the blob's last buffer (tee) or last byte (file) before the hash matched: on a mismatch
/// every response is cut short, which the caller turns into a reset connection, so no client ever holds a
/// complete body with a 200 that is not the blob; and nothing unverified is stored.</item>
/// <item>The download runs on the cache's own cancellation, not a client's: a client that disconnects only
/// stops its own response.</item>
/// </list>
/// </summary>
internal sealed class BlobFetch
{
    /// <summary>Buffers queued for the tee client before it is moved to the temp file (4 MiB at most).</summary>
    internal const int TeeDepth = 16;

    private const int BufferSize = BlobIngest.BufferSize;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<long> _size = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IBlobWriter? _readable;
    private long _published;
    private bool _committing;
    private Tee? _tee;

    public BlobFetch(Digest digest) => Digest = digest;

    public Digest Digest { get; }

    /// <summary>The blob's size once the upstream answered; fails with the download.</summary>
    public Task<long> Size => _size.Task;

    /// <summary>Completes when the blob is stored, or fails with the reason it was not.</summary>
    public Task Completion => _done.Task;

    /// <summary>Whether the temp file can still be read behind the writer (false once the commit began).</summary>
    public bool IsReadable
    {
        get
        {
            lock (_gate)
            {
                return !_committing && _readable is not null;
            }
        }
    }

    /// <summary>
    /// Makes the caller the tee client: the buffers of the download are handed to it as they are written.
    /// Call before <see cref="RunAsync"/> starts; dispose the tee when the response ends, however it ends.
    /// </summary>
    public Tee AttachTee()
    {
        var tee = new Tee(Channel.CreateBounded<Chunk>(new BoundedChannelOptions(TeeDepth)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        }));
        _tee = tee;
        return tee;
    }

    /// <summary>
    /// Downloads <paramref name="open"/>'s stream (unverified; it reports the size as Length) into the store:
    /// hashed while written, compared with the digest, committed, then <paramref name="onStored"/> (linking it
    /// to the repository).
    /// </summary>
    public async Task RunAsync(IRegistryStore storage, Func<CancellationToken, Task<Stream>> open, Func<Task> onStored, CancellationToken cancellationToken)
    {
        IBlobWriter? ingest = null;
        Chunk? last = null;
        try
        {
            var source = await open(cancellationToken).ConfigureAwait(false);
            await using (source.ConfigureAwait(false))
            {
                var size = source.Length;
                ingest = await storage.Blobs.BeginWriteAsync(Digest.Algorithm, cancellationToken).ConfigureAwait(false);
                lock (_gate)
                {
                    _readable = ingest;
                }

                _size.TrySetResult(size);
                last = await CopyAsync(source, ingest, size, cancellationToken).ConfigureAwait(false);

                // The one verification: the ingest hashed every byte as it wrote it.
                var actual = ingest.CurrentDigest();
                if (actual != Digest)
                {
                    throw new DigestMismatchException(Digest, actual, null);
                }

                // Verified: the held-back tail may go out while the store makes the blob durable.
                if (last is { } tail)
                {
                    last = null;
                    Hand(tail);
                }

                _tee?.Complete(null);
                _tee = null;
                Publish(size);
                lock (_gate)
                {
                    _committing = true;
                }

                // The store compares the digest again as it commits; the writer is finished either way.
                var committing = ingest;
                ingest = null;
                await committing.CommitAsync(Digest, cancellationToken).ConfigureAwait(false);
                await onStored().ConfigureAwait(false);
            }

            _done.TrySetResult();
        }
        catch (Exception ex)
        {
            if (last is { } held)
            {
                ArrayPool<byte>.Shared.Return(held.Buffer);
            }

            if (ingest is not null)
            {
                await ingest.AbortAsync().ConfigureAwait(false);
            }

            _tee?.Complete(ex);
            _tee = null;
            _size.TrySetException(ex);
            _done.TrySetException(ex);
        }
        finally
        {
            TaskCompletionSource progress;
            lock (_gate)
            {
                progress = _progress;
            }

            progress.TrySetResult();
        }
    }

    /// <summary>
    /// Opens the temp file for a client to read behind the writer, or null when the download is already being
    /// committed or the store keeps no readable copy (the client then waits for <see cref="Completion"/> and reads
    /// the stored blob).
    /// </summary>
    public Stream? OpenReader()
    {
        lock (_gate)
        {
            return _committing ? null : _readable?.OpenWritten();
        }
    }

    /// <summary>
    /// Serves the blob to <paramref name="destination"/> as the download makes it available: from the tee while
    /// the client keeps up, then from the temp file. Returns how many bytes were written: less than
    /// <paramref name="size"/> when the download was already being committed, so the rest is to be read from the
    /// store once <see cref="Completion"/> succeeded. Throws the download's failure (the caller aborts the response).
    /// </summary>
    public async Task<long> ServeAsync(Tee? tee, Stream destination, long size, CancellationToken cancellationToken)
    {
        long position = 0;
        if (tee is not null)
        {
            position = await tee.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
            if (position == size)
            {
                return size;
            }
        }

        var reader = OpenReader();
        if (reader is null)
        {
            return position;
        }

        await using (reader.ConfigureAwait(false))
        {
            await CopyFromFileAsync(reader, destination, position, size, cancellationToken).ConfigureAwait(false);
        }

        return size;
    }

    // Reads the upstream into fresh buffers, each written and hashed on another thread while the next one is
    // received, then handed to the tee. The buffer that completes the blob is returned instead (held back).
    private async Task<Chunk?> CopyAsync(Stream source, IBlobWriter ingest, long size, CancellationToken cancellationToken)
    {
        var pending = Task.CompletedTask;
        Chunk? last = null;
        long copied = 0;
        try
        {
            while (true)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                int read;
                try
                {
                    read = await source.ReadAtLeastAsync(buffer.AsMemory(0, BufferSize), BufferSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                    await pending.ConfigureAwait(false);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }

                if (read == 0 || copied + read > size)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    if (read == 0)
                    {
                        break;
                    }

                    throw new InvalidDataException($"the upstream sent more than the {size} bytes it announced");
                }

                copied += read;
                var chunk = new Chunk(buffer, read);
                if (copied == size)
                {
                    await ingest.WriteAsync(chunk.Memory, cancellationToken).ConfigureAwait(false);
                    last = chunk;
                    Publish(size - 1);
                    break;
                }

                pending = Task.Run(
                    async () =>
                    {
                        try
                        {
                            await ingest.WriteAsync(chunk.Memory, CancellationToken.None).ConfigureAwait(false);
                        }
                        catch
                        {
                            ArrayPool<byte>.Shared.Return(chunk.Buffer);
                            throw;
                        }

                        Hand(chunk);
                        Publish(ingest.Length);
                    },
                    CancellationToken.None);
            }
        }
        finally
        {
            // Nothing may still write into a file the caller is about to commit or drop.
            await pending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await pending.ConfigureAwait(false);
        if (copied < size)
        {
            throw new EndOfStreamException($"the upstream's body ended after {copied} of {size} bytes");
        }

        return last;
    }

    // To the tee client if it keeps up; otherwise it is dropped from the tee and reads on from the file.
    private void Hand(Chunk chunk)
    {
        if (_tee is { } tee)
        {
            if (tee.TryWrite(chunk))
            {
                return;
            }

            tee.Complete(null);
            _tee = null;
        }

        ArrayPool<byte>.Shared.Return(chunk.Buffer);
    }

    private async Task CopyFromFileAsync(Stream reader, Stream destination, long position, long size, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
        try
        {
            while (position < size)
            {
                Task wait;
                long available;
                lock (_gate)
                {
                    available = _published;
                    wait = _progress.Task;
                }

                if (available <= position)
                {
                    if (_done.Task.IsFaulted)
                    {
                        await _done.Task.ConfigureAwait(false);
                    }

                    await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }

                while (position < available)
                {
                    reader.Position = position;
                    var read = await reader.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, available - position)), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        throw new EndOfStreamException("the download's temp file ended before its published length");
                    }

                    await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    position += read;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Publish(long bytes)
    {
        TaskCompletionSource previous;
        lock (_gate)
        {
            if (bytes <= _published)
            {
                return;
            }

            _published = bytes;
            previous = _progress;
            _progress = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }

    /// <summary>A pooled buffer of the download; whoever holds it last returns it to the pool.</summary>
    internal readonly record struct Chunk(byte[] Buffer, int Length)
    {
        public ReadOnlyMemory<byte> Memory => Buffer.AsMemory(0, Length);
    }

    /// <summary>
    /// The in-memory hand-over to the client that started the download. Completed normally when the client was
    /// dropped (it then reads on from the file) or the blob is verified, with the failure otherwise.
    /// </summary>
    internal sealed class Tee(Channel<Chunk> channel) : IDisposable
    {
        private volatile bool _detached;

        /// <summary>Writes the chunks to <paramref name="destination"/> until the tee ends; returns the bytes written.</summary>
        public async Task<long> CopyToAsync(Stream destination, CancellationToken cancellationToken)
        {
            long written = 0;
            while (await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (channel.Reader.TryRead(out var chunk))
                {
                    try
                    {
                        await destination.WriteAsync(chunk.Memory, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(chunk.Buffer);
                    }

                    written += chunk.Length;
                }
            }

            return written;
        }

        /// <summary>Ends the client's part (its response is over): the download stops handing it buffers.</summary>
        public void Dispose()
        {
            _detached = true;
            while (channel.Reader.TryRead(out var chunk))
            {
                ArrayPool<byte>.Shared.Return(chunk.Buffer);
            }
        }

        internal bool TryWrite(Chunk chunk) => !_detached && channel.Writer.TryWrite(chunk);

        internal void Complete(Exception? error) => channel.Writer.TryComplete(error);
    }
}
