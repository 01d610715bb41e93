using Airlock.IO;

namespace Airlock.Bundles.Archive;

/// <summary>
/// Bounds on reading an archive that may come from anywhere (the images directory imports whatever is
/// dropped into it): a decompression bomb must fail early, not fill the disk.
/// </summary>
public sealed record ArchiveLimits
{
    /// <summary>Most bytes the tar stream may expand to.</summary>
    public long MaxExpandedBytes { get; init; } = 64L << 30;

    /// <summary>
    /// Most expanded bytes per compressed byte once <see cref="RatioGraceBytes"/> have been expanded. Image
    /// layers are compressed already, so real archives stay far below; zeros compress 1000:1 and more.
    /// </summary>
    public double MaxExpansionRatio { get; init; } = 200;

    /// <summary>Expanded bytes before the ratio is checked, so small sparse files do not trip it.</summary>
    public long RatioGraceBytes { get; init; } = 256L << 20;

    /// <summary>Folder for the temporary layout a compressed archive is spooled into (default: the temp folder).</summary>
    public string? SpoolDirectory { get; init; }
}

/// <summary>Counts what a decompressor produces and stops at the limits.</summary>
/// <remarks>The decompressor stays open when the guard is disposed: its reader owns it.</remarks>
internal sealed class ExpansionGuard(Stream expanded, Stream compressed, bool isCompressed, ArchiveLimits limits)
    : DelegatingReadStream(expanded, leaveOpen: true)
{
    private long _total;

    public override long Position
    {
        get => _total;
        set => throw new NotSupportedException();
    }

    protected override int OnRead(ReadOnlySpan<byte> read, int asked)
    {
        _total += read.Length;
        if (_total > limits.MaxExpandedBytes)
        {
            throw new DecompressionLimitException($"archive expands to more than the limit of {limits.MaxExpandedBytes} bytes (a decompression bomb?)");
        }

        if (isCompressed && _total > limits.RatioGraceBytes && _total > compressed.Position * limits.MaxExpansionRatio)
        {
            throw new DecompressionLimitException(
                $"archive expands more than {limits.MaxExpansionRatio}:1 ({_total} bytes from {compressed.Position}; a decompression bomb?)");
        }

        return read.Length;
    }
}

internal sealed class DecompressionLimitException(string message) : Exception(message);
