using System.Buffers;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;

namespace Airlock.Registry.PullThrough;

/// <summary>
/// One download of a blob from an upstream, shared by every request that misses on it meanwhile
/// (single-flight). The bytes go through a <see cref="BlobIngest"/> in the store's ingest folder, hashed
/// while written, and are committed by the store only if they match the digest. Clients read the ingest's
/// temp file behind the writer, but never its last byte before the commit succeeded: a client can never
/// receive a complete body whose digest is wrong, and nothing unverified is ever stored.
/// </summary>
internal sealed class BlobFetch
{
    private const int BufferSize = 1 << 20;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<long> _size = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _tempPath;
    private long _published;
    private bool _committing;

    public BlobFetch(Digest digest) => Digest = digest;

    public Digest Digest { get; }

    /// <summary>The blob's size once the upstream answered; fails with the download.</summary>
    public Task<long> Size => _size.Task;

    /// <summary>Completes when the blob is stored, or fails with the reason it was not.</summary>
    public Task Completion => _done.Task;

    /// <summary>
    /// Downloads <paramref name="open"/>'s stream (which reports the size as Length and verifies the digest at
    /// its end) into the store, then runs <paramref name="onStored"/> (linking it to the repository).
    /// </summary>
    public async Task RunAsync(RegistryStorage storage, Func<CancellationToken, Task<Stream>> open, Func<Task> onStored, CancellationToken cancellationToken)
    {
        BlobIngest? ingest = null;
        try
        {
            var source = await open(cancellationToken).ConfigureAwait(false);
            await using (source.ConfigureAwait(false))
            {
                var size = source.Length;
                Directory.CreateDirectory(storage.Layout.IngestDirectory);
                ingest = BlobIngest.Start(storage.Layout.IngestFile(), Digest.Algorithm);
                lock (_gate)
                {
                    _tempPath = ingest.TempPath;
                }

                _size.TrySetResult(size);
                var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                try
                {
                    int read;
                    while ((read = await source.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        await ingest.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                        Publish(Math.Min(ingest.Length, size - 1));
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }

                lock (_gate)
                {
                    _committing = true;
                }

                // The store re-checks the digest and the size before the atomic rename; it consumes the ingest.
                var committing = ingest;
                ingest = null;
                await storage.Blobs.CommitAsync(committing, Digest, cancellationToken).ConfigureAwait(false);
                await onStored().ConfigureAwait(false);
                Publish(size);
            }

            _done.TrySetResult();
        }
        catch (Exception ex)
        {
            if (ingest is not null)
            {
                await ingest.AbortAsync().ConfigureAwait(false);
                await ingest.DisposeAsync().ConfigureAwait(false);
            }

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
    /// committed (the client then waits for <see cref="Completion"/> and reads the stored blob).
    /// </summary>
    public FileStream? OpenReader()
    {
        lock (_gate)
        {
            if (_committing || _tempPath is null)
            {
                return null;
            }

            return new FileStream(_tempPath, new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.ReadWrite | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
                BufferSize = 0,
            });
        }
    }

    /// <summary>
    /// Copies the blob from <paramref name="reader"/> to <paramref name="destination"/> as the download makes
    /// bytes readable. Throws the download's failure (the caller aborts the response).
    /// </summary>
    public async Task CopyToAsync(FileStream reader, Stream destination, long size, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
        try
        {
            long position = 0;
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
}
