using System.IO.Compression;
using K4os.Compression.LZ4.Streams;
using SharpCompress.Compressors.BZip2;

namespace Airlock.Bundles.Archive;

/// <summary>How an archive's tar stream is compressed.</summary>
public enum ArchiveCompression
{
    None,
    Gzip,
    Zstd,
    Lz4,
    Bzip2,
}

/// <summary>
/// Compression codecs for archives: detected by magic bytes when reading (the file name is never trusted),
/// chosen by flag or file name when writing.
/// </summary>
public static class ArchiveCodecs
{
    /// <summary>Bytes needed by <see cref="Detect"/> to recognise a plain tar (the ustar magic sits at 257).</summary>
    public const int DetectLength = 512;

    /// <summary>
    /// The compression the first bytes of a file show, or <c>null</c> when they are neither a known
    /// compressed stream nor a tar header.
    /// </summary>
    public static ArchiveCompression? Detect(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b]))
        {
            return ArchiveCompression.Gzip;
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd]))
        {
            return ArchiveCompression.Zstd;
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0x04, 0x22, 0x4d, 0x18]))
        {
            return ArchiveCompression.Lz4;
        }

        if (head.Length >= 4 && head.StartsWith("BZh"u8) && head[3] is >= (byte)'1' and <= (byte)'9')
        {
            return ArchiveCompression.Bzip2;
        }

        return IsTarHeader(head) ? ArchiveCompression.None : null;
    }

    /// <summary>
    /// Whether the file starts like an image archive (a tar, plain or compressed), read from its first bytes: what
    /// <c>images list FILE</c> uses to tell an archive from a YAML manifest, whatever the file is called.
    /// </summary>
    public static bool IsArchiveFile(string path)
    {
        var head = new byte[DetectLength];
        using var file = File.OpenRead(path);
        var read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        return Detect(head.AsSpan(0, read)) is not null;
    }

    /// <summary>A tar header block: ustar/gnu magic, or (old v7 tars) a valid header checksum.</summary>
    internal static bool IsTarHeader(ReadOnlySpan<byte> head)
    {
        if (head.Length < DetectLength)
        {
            return false;
        }

        if (head[257..262].SequenceEqual("ustar"u8))
        {
            return true;
        }

        // v7 header: octal checksum at 148..156 over the block with the checksum field taken as spaces.
        long sum = 0;
        for (var i = 0; i < DetectLength; i++)
        {
            sum += i is >= 148 and < 156 ? (byte)' ' : head[i];
        }

        var field = System.Text.Encoding.ASCII.GetString(head[148..156]).Trim(' ', '\0');
        return field.Length > 0 && field.All(c => c is >= '0' and <= '7') && Convert.ToInt64(field, 8) == sum && head[0] != 0;
    }

    /// <summary>The compression a file name implies: .tar.gz/.tgz, .tar.zst/.tzst, .tar.lz4, .tar.bz2/.tbz, else none.</summary>
    public static ArchiveCompression FromFileName(string path)
    {
        var name = Path.GetFileName(path).ToLowerInvariant();
        return name switch
        {
            _ when name.EndsWith(".gz", StringComparison.Ordinal) || name.EndsWith(".tgz", StringComparison.Ordinal) => ArchiveCompression.Gzip,
            _ when name.EndsWith(".zst", StringComparison.Ordinal) || name.EndsWith(".tzst", StringComparison.Ordinal) || name.EndsWith(".zstd", StringComparison.Ordinal) => ArchiveCompression.Zstd,
            _ when name.EndsWith(".lz4", StringComparison.Ordinal) => ArchiveCompression.Lz4,
            _ when name.EndsWith(".bz2", StringComparison.Ordinal) || name.EndsWith(".tbz", StringComparison.Ordinal) || name.EndsWith(".tbz2", StringComparison.Ordinal) => ArchiveCompression.Bzip2,
            _ => ArchiveCompression.None,
        };
    }

    /// <summary>Parses the <c>--compress</c> value: zstd, gzip, lz4, bzip2 or none.</summary>
    public static ArchiveCompression Parse(string value) => value.ToLowerInvariant() switch
    {
        "none" or "tar" => ArchiveCompression.None,
        "gzip" or "gz" => ArchiveCompression.Gzip,
        "zstd" or "zst" => ArchiveCompression.Zstd,
        "lz4" => ArchiveCompression.Lz4,
        "bzip2" or "bz2" => ArchiveCompression.Bzip2,
        _ => throw new FormatException($"compression \"{value}\" is not one of zstd, gzip, lz4, bzip2, none"),
    };

    internal static Stream OpenRead(Stream compressed, ArchiveCompression compression) => compression switch
    {
        ArchiveCompression.None => compressed,
        ArchiveCompression.Gzip => new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true),
        ArchiveCompression.Zstd => new ZstdSharp.DecompressionStream(compressed, leaveOpen: true),
        ArchiveCompression.Lz4 => LZ4Stream.Decode(compressed, leaveOpen: true),
        ArchiveCompression.Bzip2 => BZip2Stream.Create(new KeepOpenStream(compressed), SharpCompress.Compressors.CompressionMode.Decompress, decompressConcatenated: true, leaveOpen: false),
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };

    internal static Stream OpenWrite(Stream output, ArchiveCompression compression) => compression switch
    {
        ArchiveCompression.None => output,
        ArchiveCompression.Gzip => new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true),
        ArchiveCompression.Zstd => new ZstdSharp.CompressionStream(output, level: 3, leaveOpen: true),
        ArchiveCompression.Lz4 => LZ4Stream.Encode(output, leaveOpen: true),
        // SharpCompress 0.48 writes bzip2's last block only when it also closes the stream it writes to.
        ArchiveCompression.Bzip2 => BZip2Stream.Create(new KeepOpenStream(output), SharpCompress.Compressors.CompressionMode.Compress, decompressConcatenated: false, leaveOpen: false),
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };
}

/// <summary>Passes everything through but leaves the inner stream open when closed.</summary>
internal sealed class KeepOpenStream(Stream inner) : Stream
{
    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
