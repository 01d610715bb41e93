using System.Buffers;
using System.Formats.Tar;
using System.Security.Cryptography;
using Airlock.Oci;
using Microsoft.Win32.SafeHandles;

namespace Airlock.Bundles.Archive;

/// <summary>
/// The security boundary of reading an archive: one pass over a tar from outside (compressed or not) that indexes
/// every file by the offset of its data, without extracting anything. Every entry is checked on the way: names that
/// are absolute, hold <c>..</c>, a backslash or NUL, links (symbolic or hard) that resolve outside the archive or to
/// nothing, link chains longer than <see cref="MaxLinkHops"/>, device files and FIFOs, an entry that appears twice,
/// a file under <c>blobs/</c> not named by a supported digest, data cut short, and decompression beyond
/// <see cref="ArchiveLimits"/> are refused with <see cref="BundleFormatException"/> naming the entry. A compressed
/// archive is decompressed once, in the same pass, into a spool file (never into memory) that is read in place and
/// deleted on dispose. What the files mean (an OCI layout, a <c>docker save</c>) is for the format readers on top.
/// </summary>
internal sealed class TarIndex : IDisposable
{
    /// <summary>The most links followed from one name to a file.</summary>
    public const int MaxLinkHops = 16;

    private readonly string _path;
    private readonly ArchiveLimits _limits;
    private readonly Dictionary<string, ArchiveFile> _files = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);
    private readonly Dictionary<Digest, ArchiveFile> _blobs = [];

    private TarIndex(string path, ArchiveLimits limits)
    {
        _path = path;
        _limits = limits;
    }

    /// <summary>The archive as given.</summary>
    public string Path => _path;

    /// <summary>The tar read in place: the archive itself, or the spool its decompressed tar went to.</summary>
    public SafeFileHandle Tar { get; private set; } = null!;

    /// <summary>The spool file of a compressed archive; null for a plain tar.</summary>
    public string? SpoolPath { get; private set; }

    public ArchiveCompression Compression { get; private set; }

    /// <summary>Every file by its canonical name (<c>./</c> and repeated separators dropped), links resolved to their file.</summary>
    public IReadOnlyDictionary<string, ArchiveFile> Files => _files;

    /// <summary>Every file by its content: the digest of its name under <c>blobs/</c>, else the digest of its content.</summary>
    public IReadOnlyDictionary<Digest, ArchiveFile> Blobs => _blobs;

    /// <summary>Reads and checks the whole archive; throws <see cref="BundleFormatException"/> naming the first problem, leaving no spool behind.</summary>
    public static async Task<TarIndex> ReadAsync(string path, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        var index = new TarIndex(path, limits);
        try
        {
            await index.ReadAsync(cancellationToken).ConfigureAwait(false);
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>A small file (a manifest, an index, metadata) read whole and checked against <paramref name="digest"/>.</summary>
    public async Task<byte[]> ReadVerifiedAsync(ArchiveFile file, Digest digest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        var content = new byte[file.Size];
        var stream = new ArchiveBlobStream(Tar, _path, file, digest);
        await using (stream.ConfigureAwait(false))
        {
            await stream.ReadExactlyAsync(content, cancellationToken).ConfigureAwait(false);
            await stream.VerifyAtEndAsync(cancellationToken).ConfigureAwait(false);
        }

        return content;
    }

    /// <summary>A refusal naming the archive, the entry and the problem.</summary>
    public BundleFormatException Refuse(string? entry, string problem, Exception? inner = null) => new(_path, entry, problem, inner);

    public void Dispose()
    {
        Tar?.Dispose();
        try
        {
            if (SpoolPath is not null)
            {
                File.Delete(SpoolPath);
            }
        }
        catch (IOException)
        {
            // A leftover temp file is harmless; the original error matters more.
        }
    }

    private async Task ReadAsync(CancellationToken cancellationToken)
    {
        var file = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (file.ConfigureAwait(false))
        {
            var head = new byte[ArchiveCodecs.DetectLength];
            var headLength = await file.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            Compression = ArchiveCodecs.Detect(head.AsSpan(0, headLength))
                ?? throw Refuse(null, headLength == 0
                    ? "file is empty"
                    : $"unknown format: neither a tar archive nor gzip, zstd, lz4 or bzip2 compressed (starts with {Convert.ToHexString(head, 0, Math.Min(8, headLength))})");
            file.Position = 0;
            if (Compression == ArchiveCompression.None)
            {
                Tar = File.OpenHandle(_path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
                await ReadEntriesAsync(file, file, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ReadCompressedAsync(file, Compression, cancellationToken).ConfigureAwait(false);
            }
        }

        ResolveLinks();
        foreach (var (name, entry) in _files)
        {
            if (name.StartsWith("blobs/", StringComparison.Ordinal) || !_blobs.ContainsKey(entry.Digest))
            {
                _blobs[entry.Digest] = entry;
            }
        }
    }

    // The decompressed tar is written to a spool file as it is read, so its entries are indexed by their offset there.
    private async Task ReadCompressedAsync(FileStream file, ArchiveCompression compression, CancellationToken cancellationToken)
    {
        SpoolPath = System.IO.Path.Combine(_limits.SpoolDirectory ?? System.IO.Path.GetTempPath(), $"airlock-archive-{Guid.NewGuid():N}.tar");
        var spool = new FileStream(SpoolPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
        await using (spool.ConfigureAwait(false))
        {
            try
            {
                var expanded = ArchiveCodecs.OpenRead(file, compression);
                await using (expanded.ConfigureAwait(false))
                {
                    var tee = new SpoolingStream(new ExpansionGuard(expanded, file, isCompressed: true, _limits), spool);
                    await ReadEntriesAsync(tee, null, cancellationToken).ConfigureAwait(false);
                    await tee.DrainAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not BundleFormatException and not OperationCanceledException)
            {
                throw Refuse(null, Problem(ex), ex);
            }

            await spool.FlushAsync(cancellationToken).ConfigureAwait(false);
            Tar = File.OpenHandle(SpoolPath, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
        }
    }

    /// <summary>
    /// Indexes every entry by the offset of its data in <paramref name="stream"/> (for the spooling stream,
    /// its position when the entry is returned). Blobs named by digest are skipped (seeked over in place); every other file is
    /// hashed as it passes.
    /// </summary>
    private async Task ReadEntriesAsync(Stream stream, FileStream? seekable, CancellationToken cancellationToken)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var length = seekable?.Length;
        string? current = null;
        try
        {
            var tar = new TarReader(stream, leaveOpen: true);
            await using (tar.ConfigureAwait(false))
            {
                TarEntry? entry;
                while ((entry = await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false)) is not null)
                {
                    current = entry.Name;
                    var offset = seekable is null ? stream.Position : entry.DataOffset;
                    if (length is { } total && offset + entry.Length > total)
                    {
                        throw Refuse(current, $"archive is truncated: the entry ends after {Math.Max(0, total - offset)} of {entry.Length} bytes");
                    }

                    if (entry.EntryType is TarEntryType.GlobalExtendedAttributes)
                    {
                        continue;
                    }

                    var name = NormaliseName(entry.Name, current);
                    if (!seen.Add(name))
                    {
                        throw Refuse(current, "appears twice in the archive");
                    }

                    switch (entry.EntryType)
                    {
                        case TarEntryType.Directory:
                            break;
                        case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                            _files[name] = new ArchiveFile(current, offset, entry.Length,
                                BlobName(name, current) ?? await HashAsync(entry, current, cancellationToken).ConfigureAwait(false));
                            break;
                        case TarEntryType.SymbolicLink:
                            _links[name] = SymbolicLinkTarget(name, entry.LinkName, current);
                            break;
                        case TarEntryType.HardLink:
                            _links[name] = NormaliseName(entry.LinkName, current, "hard link target");
                            break;
                        default:
                            throw Refuse(current, $"is a {entry.EntryType} entry; only files, directories and links belong in an image archive");
                    }
                }
            }
        }
        catch (Exception ex) when (ex is not BundleFormatException and not OperationCanceledException)
        {
            throw Refuse(current, Problem(ex), ex);
        }
    }

    private static string Problem(Exception ex) => ex switch
    {
        EndOfStreamException => "archive is truncated",
        DecompressionLimitException => ex.Message,
        _ => $"archive is corrupt or truncated ({ex.Message})",
    };

    private async Task<Digest> HashAsync(TarEntry entry, string entryName, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long read = 0;
        if (entry.DataStream is { } data)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
            try
            {
                int n;
                while ((n = await data.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    read += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        return read == entry.Length
            ? Digest.FromHash(Digest.Sha256Algorithm, hash.GetHashAndReset())
            : throw Refuse(entryName, $"archive is truncated: the entry ends after {read} of {entry.Length} bytes");
    }

    // blobs/<algorithm>/<encoded> must be a digest Airlock can verify; other names are hashed as found.
    private Digest? BlobName(string name, string entryName)
    {
        if (!name.StartsWith("blobs/", StringComparison.Ordinal))
        {
            return null;
        }

        var parts = name.Split('/');
        if (parts.Length != 3 || !Digest.TryParse($"{parts[1]}:{parts[2]}", out var digest))
        {
            throw Refuse(entryName, "file under blobs/ is not named <algorithm>/<digest>");
        }

        return digest.IsSupported ? digest : throw Refuse(entryName, $"digest algorithm \"{digest.Algorithm}\" is not supported");
    }

    private void ResolveLinks()
    {
        foreach (var (link, firstTarget) in _links)
        {
            var target = firstTarget;
            for (var hop = 0; !_files.ContainsKey(target); hop++)
            {
                if (hop >= MaxLinkHops || !_links.TryGetValue(target, out var next))
                {
                    throw Refuse(link, $"links to \"{firstTarget}\", which is not a file in the archive");
                }

                target = next;
            }

            var file = _files[target];
            if (BlobName(link, link) is { } named && named != file.Digest)
            {
                throw Refuse(link, $"content does not match its name (it links to {file.Entry}, which is {file.Digest})");
            }

            _files[link] = file;
        }
    }

    /// <summary>
    /// An entry name made canonical (<c>./</c>, empty and trailing separators dropped); absolute names and
    /// <c>..</c> are refused outright rather than cleaned, since no honest archive writer produces them.
    /// </summary>
    public string NormaliseName(string raw, string entry, string what = "name")
    {
        if (raw.Length == 0 || raw.Contains('\0', StringComparison.Ordinal))
        {
            throw Refuse(entry, $"{what} is empty or contains NUL");
        }

        if (raw.StartsWith('/') || raw.Contains('\\', StringComparison.Ordinal))
        {
            throw Refuse(entry, $"{what} \"{raw}\" is an absolute path; entries must stay inside the archive");
        }

        var parts = new List<string>();
        foreach (var part in raw.Split('/'))
        {
            if (part is "" or ".")
            {
                continue;
            }

            if (part == "..")
            {
                throw Refuse(entry, $"{what} \"{raw}\" contains \"..\"; entries must stay inside the archive");
            }

            parts.Add(part);
        }

        return parts.Count == 0 ? "." : string.Join('/', parts);
    }

    // A symbolic link is resolved against its own folder and must land inside the archive.
    private string SymbolicLinkTarget(string name, string linkName, string entry)
    {
        if (linkName.Length == 0 || linkName.StartsWith('/'))
        {
            throw Refuse(entry, $"symbolic link to \"{linkName}\" points outside the archive");
        }

        var parts = name.Split('/').SkipLast(1).ToList();
        foreach (var part in linkName.Split('/'))
        {
            if (part is "" or ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count == 0)
                {
                    throw Refuse(entry, $"symbolic link to \"{linkName}\" points outside the archive");
                }

                parts.RemoveAt(parts.Count - 1);
                continue;
            }

            parts.Add(part);
        }

        return string.Join('/', parts);
    }

}
