using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Tests.Content;

/// <summary>
/// The pipelined ingest (receive the next buffer while the previous one is written and hashed, writeback and
/// flushes started per window): the bytes on file, the digest and the visibility rules must be exactly those
/// of a plain serial copy.
/// </summary>
public sealed class BlobIngestTests : IDisposable
{
    // More than two writeback windows and not a multiple of the buffer, so every path of the pipeline runs.
    private const int Size = (int)(2 * BlobIngest.WritebackWindow) + (3 * BlobIngest.BufferSize) + 12345;

    private readonly string _folder = Directory.CreateTempSubdirectory("airlock-ingest-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Content_arriving_in_uneven_pieces_is_stored_byte_for_byte_with_its_digest()
    {
        var content = RandomContent(Size);
        var temp = Path.Combine(_folder, "ingest");
        var final = Path.Combine(_folder, "blobs", "blob");
        await using var ingest = BlobIngest.Start(temp);

        Assert.Equal(Size, await ingest.CopyFromAsync(new TrickleStream(content, failAfter: null), CancellationToken.None));
        var digest = await ingest.CommitAsync(Digest.Sha256(content), final, CancellationToken.None);

        Assert.Equal(Digest.Sha256(content), digest);
        Assert.Equal(content, await File.ReadAllBytesAsync(final));
        Assert.False(File.Exists(temp));
    }

    [Fact]
    public async Task Content_whose_digest_does_not_match_is_never_renamed_into_place()
    {
        var content = RandomContent(Size);
        var temp = Path.Combine(_folder, "ingest");
        var final = Path.Combine(_folder, "blobs", "blob");
        var claimed = Digest.Sha256(RandomContent(16));
        var ingest = BlobIngest.Start(temp);

        await ingest.CopyFromAsync(new TrickleStream(content, failAfter: null), CancellationToken.None);
        var error = await Assert.ThrowsAsync<DigestMismatchException>(() => ingest.CommitAsync(claimed, final, CancellationToken.None));
        await ingest.AbortAsync();
        await ingest.DisposeAsync();

        Assert.Equal(Digest.Sha256(content), error.Actual);
        Assert.False(File.Exists(final));
        Assert.False(File.Exists(temp));
    }

    [Fact]
    public async Task A_suspended_ingest_holds_no_file_and_resumes_from_its_hash_or_rehashes_when_the_file_moved_on()
    {
        var content = RandomContent(3 * BlobIngest.BufferSize);
        var third = content.Length / 3;
        var temp = Path.Combine(_folder, "ingest");
        var ingest = BlobIngest.Start(temp);
        await ingest.CopyFromAsync(new MemoryStream(content[..third]), CancellationToken.None);
        var suspended = await ingest.SuspendAsync();
        await ingest.DisposeAsync();

        // Closed: an exclusive open would fail while the ingest held the file.
        await using (new FileStream(temp, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
        }

        ingest = await BlobIngest.ResumeAsync(temp, suspended, CancellationToken.None);
        await ingest.CopyFromAsync(new MemoryStream(content[third..(2 * third)]), CancellationToken.None);
        suspended = await ingest.SuspendAsync();
        await ingest.DisposeAsync();

        // Another writer (another registry process serving the session) appended meanwhile: the hash state
        // no longer describes the file, so resuming re-reads it.
        await using (var other = new FileStream(temp, FileMode.Append))
        {
            await other.WriteAsync(content.AsMemory(2 * third));
        }

        await using var resumed = await BlobIngest.ResumeAsync(temp, suspended, CancellationToken.None);
        Assert.Equal(content.Length, resumed.Length);
        Assert.Equal(Digest.Sha256(content), await resumed.CommitAsync(Digest.Sha256(content), Path.Combine(_folder, "blob"), CancellationToken.None));
    }

    [Fact]
    public async Task A_source_failing_midway_leaves_file_and_hash_in_step_so_the_upload_can_resume()
    {
        var content = RandomContent(Size);
        var temp = Path.Combine(_folder, "ingest");
        var failAfter = (5 * BlobIngest.BufferSize) + 777;
        await using (var ingest = BlobIngest.Start(temp))
        {
            await Assert.ThrowsAsync<IOException>(() => ingest.CopyFromAsync(new TrickleStream(content, failAfter), CancellationToken.None));

            // Nothing is still being written once the copy has failed: the file holds exactly what was hashed.
            Assert.Equal(ingest.Length, new FileInfo(temp).Length);
            Assert.Equal(Digest.Sha256(content.AsSpan(0, (int)ingest.Length)), ingest.CurrentDigest());
        }

        await using var resumed = await BlobIngest.ResumeAsync(temp, CancellationToken.None);
        await resumed.CopyFromAsync(new TrickleStream(content.AsMemory((int)resumed.Length), failAfter: null), CancellationToken.None);
        var final = Path.Combine(_folder, "blobs", "blob");
        await resumed.CommitAsync(Digest.Sha256(content), final, CancellationToken.None);
        Assert.Equal(content, await File.ReadAllBytesAsync(final));
    }

    [Fact]
    public async Task The_length_limit_holds_across_buffers()
    {
        var content = RandomContent(3 * BlobIngest.BufferSize);
        await using var ingest = BlobIngest.Start(Path.Combine(_folder, "ingest"));

        var error = await Assert.ThrowsAsync<BlobTooLargeException>(() =>
            ingest.CopyFromAsync(new TrickleStream(content, failAfter: null), CancellationToken.None, maxLength: (2 * BlobIngest.BufferSize) + 1));

        Assert.Equal((2 * BlobIngest.BufferSize) + 1, error.Limit);
        Assert.True(ingest.Length <= error.Limit);
    }

    private static byte[] RandomContent(int size)
    {
        var content = new byte[size];
        new Random(size).NextBytes(content);
        return content;
    }

    /// <summary>A network-like source: reads return uneven pieces, and it can break after some bytes.</summary>
    private sealed class TrickleStream(ReadOnlyMemory<byte> content, int? failAfter) : Stream
    {
        private readonly Random _sizes = new(7);
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (failAfter is { } limit && _position >= limit)
            {
                throw new IOException("connection reset by the test");
            }

            var end = failAfter ?? content.Length;
            var count = Math.Min(Math.Min(buffer.Length, _sizes.Next(1, 300_000)), Math.Min(content.Length, end) - _position);
            content.Slice(_position, count).CopyTo(buffer);
            _position += count;
            return ValueTask.FromResult(count);
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
