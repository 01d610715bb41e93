using System.Buffers;
using Airlock.Content;
using Airlock.IO;
using Airlock.Oci;
using Microsoft.Win32.SafeHandles;

namespace Airlock.Bundles;

/// <summary>
/// A blob downloaded ahead of its turn and verified, waiting in a file until a sequential target (an archive)
/// takes it. The file is unlinked as soon as it is created and lives only as this open handle, so no spool
/// file outlasts the process however it ends (error, Ctrl-C, kill -9); disposing frees the space.
/// </summary>
internal sealed class BlobSpool : IDisposable
{
    private const int ChunkSize = 1 << 20;

    private readonly SafeFileHandle _file;

    private BlobSpool(Descriptor blob, SafeFileHandle file)
    {
        Blob = blob;
        _file = file;
    }

    public Descriptor Blob { get; }

    /// <summary>
    /// Reads <paramref name="content"/> to its end into a new spool file in <paramref name="directory"/>, checking it
    /// against <paramref name="blob"/> (hashed once: content that is <see cref="IVerifiedContent"/> for this blob is relied on).
    /// </summary>
    public static async Task<BlobSpool> WriteAsync(string directory, Descriptor blob, Stream content, CancellationToken cancellationToken)
    {
        var path = Path.Combine(directory, $".airlock-spool-{Guid.NewGuid():N}");
        var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.Asynchronous);
        File.Delete(path);
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            var verified = content is IVerifiedContent own && own.Verifies(blob.Digest, blob.Size)
                ? content
                : new VerifyingStream(content, blob.Digest, blob.Size, leaveOpen: true);
            try
            {
                long offset = 0;
                int filled;
                do
                {
                    // Whole chunks, so the file sees few large writes whatever sizes the network delivers.
                    filled = await verified.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);

                    await RandomAccess.WriteAsync(file, buffer.AsMemory(0, filled), offset, cancellationToken).ConfigureAwait(false);
                    offset += filled;
                }
                while (filled > 0);
            }
            finally
            {
                if (!ReferenceEquals(verified, content))
                {
                    await verified.DisposeAsync().ConfigureAwait(false);
                }
            }

            return new BlobSpool(blob, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The spooled content from its start; verified when spooled, so a target may take it as is.</summary>
    public Stream OpenRead() => new Reader(this);

    public void Dispose() => _file.Dispose();

    /// <summary>Reads a spool; it ends where the blob does.</summary>
    private sealed class Reader(BlobSpool spool) : ReadOnlyStream, IVerifiedContent
    {
        private long _position;

        public bool Verifies(Digest digest, long size) => spool.Blob.Digest == digest && spool.Blob.Size == size;

        public override long Length => spool.Blob.Size;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(Span<byte> buffer)
        {
            var n = RandomAccess.Read(spool._file, buffer[..(int)Math.Min(buffer.Length, spool.Blob.Size - _position)], _position);
            _position += n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await RandomAccess.ReadAsync(spool._file, buffer[..(int)Math.Min(buffer.Length, spool.Blob.Size - _position)], _position, cancellationToken)
                .ConfigureAwait(false);
            _position += n;
            return n;
        }
    }
}
