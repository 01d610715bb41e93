using Airlock.Content;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Tests.IO;

public sealed class ReadOnlyStreamTests
{
    [Fact]
    public async Task A_verifying_stream_treats_an_empty_read_of_nothing_as_no_end_and_checks_the_digest_at_the_real_end()
    {
        var content = "layer bytes"u8.ToArray();
        await using var verifying = new VerifyingStream(new MemoryStream(content), Digest.Sha256(content), content.Length);

        Assert.Equal(0, await verifying.ReadAsync(Memory<byte>.Empty));
        Assert.Equal(0, verifying.Read([], 0, 0));
        var buffer = new byte[64];
        Assert.Equal(content.Length, await verifying.ReadAtLeastAsync(buffer, content.Length));
        Assert.Equal(0, await verifying.ReadAsync(buffer));

        await using var wrong = new VerifyingStream(new MemoryStream(content), Digest.Sha256("other"u8), content.Length);
        await Assert.ThrowsAsync<DigestMismatchException>(() => wrong.CopyToAsync(Stream.Null));
    }

    [Fact]
    public async Task A_delegating_stream_owns_its_inner_stream_unless_told_to_leave_it_open()
    {
        var owned = new Tracked();
        var kept = new Tracked();
        await new Counting(owned, leaveOpen: false).DisposeAsync();
        new Counting(kept, leaveOpen: true).Dispose();

        Assert.True(owned.Disposed);
        Assert.False(kept.Disposed);
    }

    [Fact]
    public async Task Every_read_form_reaches_the_subclass_and_writing_or_seeking_is_refused()
    {
        using var counting = new Counting(new MemoryStream(new byte[10]), leaveOpen: false);
        Assert.Equal(4, counting.Read(new byte[4], 0, 4));
        Assert.Equal(3, counting.Read(new byte[3].AsSpan()));
        Assert.Equal(2, await counting.ReadAsync(new byte[2], 0, 2));
        Assert.Equal(0, counting.ReadByte());
        Assert.Equal(10, counting.Seen);

        Assert.False(counting.CanWrite);
        Assert.False(counting.CanSeek);
        Assert.Throws<NotSupportedException>(() => counting.Write([1], 0, 1));
        Assert.Throws<NotSupportedException>(() => counting.Seek(0, SeekOrigin.Begin));
        Assert.Throws<NotSupportedException>(() => counting.Position = 0);
    }

    private sealed class Counting(Stream inner, bool leaveOpen) : DelegatingReadStream(inner, leaveOpen)
    {
        public int Seen { get; private set; }

        protected override int OnRead(ReadOnlySpan<byte> read, int asked)
        {
            Seen += read.Length;
            return read.Length;
        }
    }

    private sealed class Tracked : MemoryStream
    {
        public bool Disposed { get; private set; }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
