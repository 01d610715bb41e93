namespace Airlock.IO;

/// <summary>
/// A stream read once, front to back: a blob body, a file inside an archive, a spool. Subclasses give
/// <see cref="ReadAsync(Memory{byte}, CancellationToken)"/> (and <see cref="Read(Span{byte})"/> when they have a
/// synchronous source); seeking, writing and everything else Stream asks of them is refused here, once.
/// </summary>
public abstract class ReadOnlyStream : Stream
{
    public sealed override bool CanRead => true;

    public override bool CanSeek => false;

    public sealed override bool CanWrite => false;

    /// <summary>Unknown unless a subclass knows it (a blob's size, an archive entry's length).</summary>
    public override long Length => throw new NotSupportedException();

    /// <summary>Bytes read so far where a subclass counts them; never settable.</summary>
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Synchronous reads block on <see cref="ReadAsync(Memory{byte}, CancellationToken)"/> unless a subclass reads synchronously itself.</summary>
    public override int Read(Span<byte> buffer)
    {
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var n = ReadAsync(rented.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public sealed override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public sealed override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public sealed override void Flush()
    {
    }

    public sealed override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public sealed override void SetLength(long value) => throw new NotSupportedException();

    public sealed override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public sealed override void Write(ReadOnlySpan<byte> buffer) => throw new NotSupportedException();

    public sealed override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();
}

/// <summary>
/// A <see cref="ReadOnlyStream"/> over another stream, seeing every chunk that passes (to hash it, count it,
/// bound it, copy it). It owns the inner stream, and disposes it with itself, unless made with <c>leaveOpen</c>.
/// </summary>
public abstract class DelegatingReadStream(Stream inner, bool leaveOpen = false) : ReadOnlyStream
{
    private bool _innerDisposed;

    protected Stream Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    public override int Read(Span<byte> buffer) => OnRead(buffer[..Inner.Read(buffer)], buffer.Length);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return OnRead(buffer.Span[..n], buffer.Length);
    }

    /// <summary>
    /// Called with what one read returned (empty at the end of the inner stream when <paramref name="asked"/> was
    /// more than 0); returns the count to hand the caller, or throws to refuse the content.
    /// </summary>
    protected virtual int OnRead(ReadOnlySpan<byte> read, int asked) => read.Length;

    protected override void Dispose(bool disposing)
    {
        if (disposing && !leaveOpen && !_innerDisposed)
        {
            _innerDisposed = true;
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Disposes the inner stream asynchronously (a network body, a gRPC call), then this one as <see cref="Dispose(bool)"/> does.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (!leaveOpen && !_innerDisposed)
        {
            _innerDisposed = true;
            await Inner.DisposeAsync().ConfigureAwait(false);
        }

        Dispose();
    }
}
