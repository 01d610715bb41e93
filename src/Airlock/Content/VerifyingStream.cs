using System.Security.Cryptography;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// A read-only stream that hashes what passes through and, at the end, throws
/// <see cref="DigestMismatchException"/> if the content is not the descriptor's digest and size. Used for
/// every blob read from outside (a registry, an archive), so nothing unverified is ever committed.
/// </summary>
public sealed class VerifyingStream(Stream inner, Digest expected, long expectedSize, bool leaveOpen = false)
    : DelegatingReadStream(inner, leaveOpen), IVerifiedContent
{
    private readonly IncrementalHash _hash = expected.CreateHash();
    private long _read;
    private bool _verified;

    public bool Verifies(Digest digest, long size) => expected == digest && expectedSize == size;

    public override long Length => expectedSize;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    protected override int OnRead(ReadOnlySpan<byte> data, int asked)
    {
        if (data.Length > 0)
        {
            _read += data.Length;
            if (_read > expectedSize)
            {
                throw new DigestMismatchException(expected, expected, $"content is longer than the expected {expectedSize} bytes");
            }

            _hash.AppendData(data);
            return data.Length;
        }

        // An empty read asked for nothing says nothing about the end of the content.
        if (asked > 0 && !_verified)
        {
            _verified = true;
            var actual = Digest.FromHash(expected.Algorithm, _hash.GetCurrentHash());
            if (_read != expectedSize)
            {
                throw new DigestMismatchException(expected, actual, $"content ended after {_read} of {expectedSize} bytes");
            }

            if (actual != expected)
            {
                throw new DigestMismatchException(expected, actual, null);
            }
        }

        return 0;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }
}
