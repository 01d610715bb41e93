namespace Airlock.IO;

/// <summary>
/// An HTTP response body of known size whose every read must make progress within a bound: a read that gets no byte for
/// <c>stall</c> fails with <see cref="TimeoutException"/>, so a peer or endpoint that stops sending mid-body costs at most
/// that long. Disposing it disposes what it was given to own (the response, a lease), in order.
/// </summary>
public sealed class BoundedBodyStream(Stream body, long size, TimeSpan stall, TimeProvider time, params IDisposable[] owned) : ReadOnlyStream
{
    private long _read;
    private bool _disposed;

    public override long Length => size;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // A timer registration, not a timed wait: the read itself is cancelled, so no socket read is left pending.
        using var timer = stall == Timeout.InfiniteTimeSpan ? null : time.CreateTimer(_ => Cancel(bound), null, stall, Timeout.InfiniteTimeSpan);
        try
        {
            var n = await body.ReadAsync(buffer, bound.Token).ConfigureAwait(false);
            _read += n;
            return n;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no data for {stall.TotalSeconds:0.###} s after {_read} of {size} bytes");
        }
    }

    // A timer may fire just as the read it bounds returns and its source is disposed: nothing is left to cancel then.
    internal static void Cancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            body.Dispose();
            foreach (var item in owned)
            {
                item.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            await body.DisposeAsync().ConfigureAwait(false);
            foreach (var item in owned)
            {
                item.Dispose();
            }
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }
}
