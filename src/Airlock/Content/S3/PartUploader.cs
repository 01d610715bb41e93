using System.Buffers;
using System.Security.Cryptography;

namespace Airlock.Content.S3;

/// <summary>One part of a multipart upload that S3 acknowledged.</summary>
internal readonly record struct UploadedPart(int Number, string ETag, long Size);

/// <summary>
/// Bytes on their way to one S3 object, never whole in memory: they are buffered in a file on local disk up to the
/// part size, hashed as they pass, and each full part is sent as one part of a multipart upload (started with the first
/// part) while the next one is received, at most two in flight. What is left under a part size stays in
/// <see cref="BufferPath"/> for the caller: the last part of a commit, one PUT for a small blob, or an upload session's
/// tail kept in the bucket between requests.
/// </summary>
internal sealed class PartUploader : IAsyncDisposable
{
    /// <summary>S3's smallest part but the last.</summary>
    public const int MinimumPartSize = 5 << 20;

    private const int CopyBuffer = 256 << 10;
    private const int MaxInFlight = 2;

    private readonly S3Bucket _bucket;
    private readonly string _bufferDirectory;
    private readonly int _partSize;
    private readonly List<UploadedPart> _parts;
    private readonly Queue<Task<UploadedPart>> _inFlight = new();
    private FileStream _buffer;
    private long _sentOrSending;

    public PartUploader(S3Bucket bucket, string key, string bufferDirectory, int partSize, IncrementalHash? hash, string? uploadId = null, IReadOnlyList<UploadedPart>? parts = null)
    {
        _bucket = bucket;
        Key = key;
        _bufferDirectory = bufferDirectory;
        _partSize = partSize;
        Hash = hash;
        UploadId = uploadId;
        _parts = [.. parts ?? []];
        _sentOrSending = _parts.Sum(p => p.Size);
        _buffer = NewBuffer();
    }

    /// <summary>The object the parts are for.</summary>
    public string Key { get; }

    /// <summary>Called once the multipart upload exists, before its first part is sent (its id recorded elsewhere).</summary>
    public Func<string, CancellationToken, Task>? Started { get; init; }

    /// <summary>The multipart upload, once the first part was sent.</summary>
    public string? UploadId { get; private set; }

    /// <summary>The hash of every byte so far, or null when it is not known (a session another replica wrote to).</summary>
    public IncrementalHash? Hash { get; private set; }

    /// <summary>Bytes sent as parts (or being sent) plus those buffered.</summary>
    public long Length => _sentOrSending + _buffer.Length;

    /// <summary>Parts sent or being sent.</summary>
    public int PartCount => _parts.Count + _inFlight.Count;

    /// <summary>Bytes in the local buffer, not yet in any part.</summary>
    public long Buffered => _buffer.Length;

    public string BufferPath => _buffer.Name;

    /// <summary>Appends to the buffer (hashing), sending full parts.</summary>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var room = (int)Math.Min(data.Length, _partSize - _buffer.Length);
            var chunk = data[..room];
            await _buffer.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
            Hash?.AppendData(chunk.Span);
            data = data[room..];
            if (_buffer.Length >= _partSize)
            {
                await SendBufferAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Adds bytes that are already hashed (an upload session's tail, read back) to the buffer.</summary>
    public async Task PrefillAsync(Stream content, CancellationToken cancellationToken)
    {
        await content.CopyToAsync(_buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Copies <paramref name="source"/> in; <see cref="BlobTooLargeException"/> once more than <paramref name="maxLength"/> bytes in total would be held.</summary>
    public async Task<long> CopyFromAsync(Stream source, CancellationToken cancellationToken, long maxLength = long.MaxValue)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(CopyBuffer);
        long copied = 0;
        try
        {
            while (true)
            {
                var read = await source.ReadAsync(buffer.AsMemory(0, CopyBuffer), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return copied;
                }

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
    }

    /// <summary>Sends what is buffered as the next part (any size: the last part of an upload), and waits for every part.</summary>
    public async Task<IReadOnlyList<UploadedPart>> FinishPartsAsync(bool sendBuffer, CancellationToken cancellationToken)
    {
        if (sendBuffer && _buffer.Length > 0)
        {
            await SendBufferAsync(cancellationToken).ConfigureAwait(false);
        }

        while (_inFlight.Count > 0)
        {
            _parts.Add(await _inFlight.Dequeue().ConfigureAwait(false));
        }

        return _parts;
    }

    /// <summary>The buffered bytes from their start (the buffer stays; the caller reads, then disposes).</summary>
    public async Task<Stream> OpenBufferAsync()
    {
        await _buffer.FlushAsync().ConfigureAwait(false);
        return new FileStream(_buffer.Name, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Share = FileShare.ReadWrite | FileShare.Delete,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            BufferSize = 0,
        });
    }

    /// <summary>Stops hashing (the hash is given to the caller, which owns it from then).</summary>
    public IncrementalHash? DetachHash()
    {
        var hash = Hash;
        Hash = null;
        return hash;
    }

    private async Task SendBufferAsync(CancellationToken cancellationToken)
    {
        if (UploadId is null)
        {
            UploadId = await _bucket.StartMultipartAsync(Key, cancellationToken).ConfigureAwait(false);
            if (Started is { } started)
            {
                await started(UploadId, cancellationToken).ConfigureAwait(false);
            }
        }

        while (_inFlight.Count >= MaxInFlight)
        {
            _parts.Add(await _inFlight.Dequeue().ConfigureAwait(false));
        }

        var full = _buffer;
        await full.FlushAsync(cancellationToken).ConfigureAwait(false);
        var number = _parts.Count + _inFlight.Count + 1;
        var size = full.Length;
        _sentOrSending += size;
        _buffer = NewBuffer();
        var uploadId = UploadId;
        _inFlight.Enqueue(SendAsync(full, number, size, uploadId, cancellationToken));
    }

    private async Task<UploadedPart> SendAsync(FileStream file, int number, long size, string uploadId, CancellationToken cancellationToken)
    {
        await using (file.ConfigureAwait(false))
        {
            file.Position = 0;
            var etag = await _bucket.UploadPartAsync(Key, uploadId, number, file, size, cancellationToken).ConfigureAwait(false);
            return new UploadedPart(number, etag, size);
        }
    }

    private FileStream NewBuffer() => new(Path.Combine(_bufferDirectory, Guid.NewGuid().ToString("N") + ".part"), new FileStreamOptions
    {
        Mode = FileMode.CreateNew,
        Access = FileAccess.ReadWrite,
        Share = FileShare.Read,
        Options = FileOptions.DeleteOnClose | FileOptions.Asynchronous,
        BufferSize = 64 << 10,
    });

    /// <summary>Drops the local buffer (parts already sent stay in the multipart upload until it is completed or aborted).</summary>
    public async ValueTask DisposeAsync()
    {
        while (_inFlight.Count > 0)
        {
            try
            {
                await _inFlight.Dequeue().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is StoreUnavailableException or OperationCanceledException)
            {
                // Abandoned with the upload.
            }
        }

        await _buffer.DisposeAsync().ConfigureAwait(false);
        Hash?.Dispose();
    }
}
