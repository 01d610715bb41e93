using System.Buffers;
using System.Net;

namespace Airlock.Remote;

/// <summary>
/// A streamed upload body that does not own (or dispose) the caller's stream and counts what it sent, so a
/// failed upload knows whether the body was touched and a test can see how many bytes crossed the wire.
/// </summary>
internal sealed class UploadContent : HttpContent
{
    private const int BufferSize = 128 * 1024;

    private readonly Stream _source;
    private readonly long? _length;

    public UploadContent(Stream source, long? length)
    {
        _source = source;
        _length = length;
        Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
    }

    public long BytesSent { get; private set; }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                var n = await _source.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                BytesSent += n;
                if (_length is { } length && BytesSent > length)
                {
                    throw new InvalidOperationException($"upload body is longer than the declared {length} bytes");
                }

                await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _length ?? -1;
        return _length is not null;
    }
}
