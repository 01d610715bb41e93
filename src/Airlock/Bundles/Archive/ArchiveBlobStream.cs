using System.Buffers;
using Airlock.Content;
using Airlock.IO;
using Airlock.Oci;
using Microsoft.Win32.SafeHandles;

namespace Airlock.Bundles.Archive;

/// <summary>A file's data inside an archive's tar: where it starts, how long it is, and its digest (as named, or as hashed).</summary>
internal sealed record ArchiveFile(string Entry, long Offset, long Size, Digest Digest);

/// <summary>
/// One file of an archive read in place with <see cref="RandomAccess"/> (so several can be read at once from
/// one handle), hashed as it is read; at its end a content that is not <c>digest</c>, or an archive that
/// ends early, is refused with <see cref="BundleFormatException"/> naming the archive and the entry.
/// </summary>
internal sealed class ArchiveBlobStream(SafeFileHandle tar, string path, ArchiveFile file, Digest digest) : ReadOnlyStream
{
    private readonly System.Security.Cryptography.IncrementalHash _hash = digest.CreateHash();
    private long _read;
    private bool _verified;

    public override long Length => file.Size;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        var wanted = (int)Math.Min(buffer.Length, file.Size - _read);
        return Account(buffer, wanted == 0 ? 0 : RandomAccess.Read(tar, buffer[..wanted], file.Offset + _read), wanted);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var wanted = (int)Math.Min(buffer.Length, file.Size - _read);
        var n = wanted == 0 ? 0 : await RandomAccess.ReadAsync(tar, buffer[..wanted], file.Offset + _read, cancellationToken).ConfigureAwait(false);
        return Account(buffer.Span, n, wanted);
    }

    /// <summary>Checks the digest once everything has been read (a reader that stops at the length never sees the end).</summary>
    public ValueTask VerifyAtEndAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Account([], 0, 0);
        return ValueTask.CompletedTask;
    }

    private int Account(ReadOnlySpan<byte> buffer, int read, int wanted)
    {
        if (read > 0)
        {
            _hash.AppendData(buffer[..read]);
            _read += read;
            return read;
        }

        if (wanted > 0)
        {
            throw new BundleFormatException(path, file.Entry, $"archive is truncated: the entry ends after {_read} of {file.Size} bytes (was the file changed while it was read?)");
        }

        if (!_verified)
        {
            _verified = true;
            var actual = Digest.FromHash(digest.Algorithm, _hash.GetHashAndReset());
            if (actual != digest)
            {
                throw new BundleFormatException(path, file.Entry, $"content does not match its name (the content is {actual})");
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

/// <summary>
/// Reads a decompressed tar and writes every byte read to a spool file, so the tar is decompressed once and
/// its entries can afterwards be read in place there; <see cref="Position"/> is the offset in the spool.
/// </summary>
internal sealed class SpoolingStream(Stream inner, Stream spool) : DelegatingReadStream(inner, leaveOpen: true)
{
    private long _position;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        var n = Inner.Read(buffer);
        spool.Write(buffer[..n]);
        _position += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        await spool.WriteAsync(buffer[..n], cancellationToken).ConfigureAwait(false);
        _position += n;
        return n;
    }

    /// <summary>Reads what follows the tar's last entry, so a stream that is cut short or corrupt at its end is noticed.</summary>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            while (await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) > 0)
            {
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
