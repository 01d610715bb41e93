using System.Security.Cryptography;
using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// A read-only stream that hashes what passes through and, at the end, throws
/// <see cref="DigestMismatchException"/> if the content is not the descriptor's digest and size. Used for
/// every blob read from outside (a registry, an archive), so nothing unverified is ever committed.
/// </summary>
public sealed class VerifyingStream : Stream, IVerifiedContent
{
    private readonly Stream _inner;
    private readonly Digest _expected;
    private readonly long _expectedSize;
    private readonly IncrementalHash _hash;
    private readonly bool _leaveOpen;
    private long _read;
    private bool _verified;

    public VerifyingStream(Stream inner, Digest expected, long expectedSize, bool leaveOpen = false)
    {
        _inner = inner;
        _expected = expected;
        _expectedSize = expectedSize;
        _hash = expected.CreateHash();
        _leaveOpen = leaveOpen;
    }

    public bool Verifies(Digest digest, long size) => _expected == digest && _expectedSize == size;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _expectedSize;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = _inner.Read(buffer);
        return Account(buffer[..n]);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Account(buffer.Span[..n]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Account(ReadOnlySpan<byte> data)
    {
        if (data.Length > 0)
        {
            _read += data.Length;
            if (_read > _expectedSize)
            {
                throw new DigestMismatchException(_expected, _expected, $"content is longer than the expected {_expectedSize} bytes");
            }

            _hash.AppendData(data);
            return data.Length;
        }

        if (!_verified)
        {
            _verified = true;
            var actual = Digest.FromHash(_expected.Algorithm, _hash.GetCurrentHash());
            if (_read != _expectedSize)
            {
                throw new DigestMismatchException(_expected, actual, $"content ended after {_read} of {_expectedSize} bytes");
            }

            if (actual != _expected)
            {
                throw new DigestMismatchException(_expected, actual, null);
            }
        }

        return 0;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            if (!_leaveOpen)
            {
                _inner.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        _hash.Dispose();
        if (!_leaveOpen)
        {
            await _inner.DisposeAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }
}
