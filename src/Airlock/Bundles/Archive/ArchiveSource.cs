using System.Buffers;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.Oci;
using Microsoft.Win32.SafeHandles;

namespace Airlock.Bundles.Archive;

/// <summary>What kind of archive was read.</summary>
public enum ArchiveFormat
{
    /// <summary>An OCI layout in a tar (<c>oci-archive:</c>, <c>ctr export</c>, Docker 25+ and Airlock's own).</summary>
    OciLayout,

    /// <summary>Only Docker's <c>manifest.json</c> (<c>docker save</c> before 25, podman, skopeo <c>docker-archive:</c>).</summary>
    DockerArchive,
}

/// <summary>
/// An image archive opened for reading, in one pass over its tar and without copying its blobs: every entry
/// is indexed by the offset of its data, and blobs are later read in place (<see cref="RandomAccess"/>, so
/// several at once) and verified against their names as they are read. A compressed archive is decompressed
/// once, in the same pass, into one temporary uncompressed tar (never into memory) that is read the same way
/// and deleted on dispose. The pass checks every entry: names that escape, links that point outside, device
/// files, duplicates, truncation and decompression bombs are refused with <see cref="BundleFormatException"/>;
/// manifests, indexes and the files of a <c>docker save</c> archive (which are not named by digest) are
/// hashed during the pass, and every manifest's graph is checked to be in the archive. A blob whose content
/// is not its name is refused when it is read, naming the entry, before any manifest that needs it is
/// written (<see cref="ImageGraph"/> writes children first). For a <c>docker save</c> archive without
/// <c>index.json</c> the image manifests are synthesised as skopeo does (see <see cref="ReadDockerManifestAsync"/>).
/// </summary>
public sealed class ArchiveSource : IImageSource, IReferrerSource
{
    private const int MaxLinkHops = 16;
    private const int MaxMetadataSize = OciLayoutStore.MaxManifestSize;

    private readonly SafeFileHandle _tar;
    private readonly string? _spool;
    private readonly Dictionary<Digest, ArchiveFile> _blobs;
    private readonly Dictionary<Digest, byte[]> _synthesised;
    private readonly List<Descriptor> _entries;
    private readonly LayoutReferrers _referrers;

    private ArchiveSource(string path, Reader reader, ArchiveFormat format, ArchiveCompression compression)
    {
        Path = path;
        _tar = reader.Tar!;
        _spool = reader.SpoolPath;
        _blobs = reader.Blobs;
        _synthesised = reader.Synthesised;
        _entries = reader.Entries;
        Format = format;
        Compression = compression;
        _referrers = new LayoutReferrers(this, () => _entries);
    }

    public string Path { get; }

    public ArchiveFormat Format { get; }

    public ArchiveCompression Compression { get; }

    /// <summary>The images in the archive, as entries of its (possibly synthesised) <c>index.json</c>.</summary>
    public IReadOnlyList<Descriptor> Entries => _entries;

    public static async Task<ArchiveSource> OpenAsync(string path, ArchiveLimits? limits, CancellationToken cancellationToken)
    {
        var reader = new Reader(path, limits ?? new ArchiveLimits());
        try
        {
            var (format, compression) = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return new ArchiveSource(path, reader, format, compression);
        }
        catch
        {
            reader.Tar?.Dispose();
            DeleteQuietly(reader.SpoolPath);
            throw;
        }
    }

    public ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) =>
        ValueTask.FromResult(OciLayoutStore.Resolve(_entries, reference, Path));

    /// <summary>The <c>index.json</c> entries whose manifest has <paramref name="subject"/> as its subject.</summary>
    public ValueTask<IReadOnlyList<Descriptor>> ReferrersAsync(Descriptor subject, CancellationToken cancellationToken) =>
        _referrers.FindAsync(subject, cancellationToken);

    /// <summary>Whether an entry is an artifact referring to another manifest (loaded with its subject, not under a name).</summary>
    public ValueTask<bool> IsReferrerAsync(Descriptor entry, CancellationToken cancellationToken) => _referrers.IsReferrerAsync(entry, cancellationToken);

    public async ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (_synthesised.TryGetValue(manifest.Digest, out var synthesised))
        {
            return synthesised;
        }

        if (!_blobs.TryGetValue(manifest.Digest, out var file) || file.Size != manifest.Size)
        {
            throw new BundleFormatException(Path, manifest.Digest.ToString(), "manifest is not in the archive");
        }

        if (file.Size > MaxMetadataSize)
        {
            throw new BundleFormatException(Path, file.Entry, $"manifest of {file.Size} bytes is larger than the {MaxMetadataSize} allowed");
        }

        return await ReadVerifiedAsync(_tar, Path, file, manifest.Digest, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        if (_synthesised.TryGetValue(blob.Digest, out var synthesised))
        {
            return ValueTask.FromResult<Stream>(new MemoryStream(synthesised, writable: false));
        }

        if (!_blobs.TryGetValue(blob.Digest, out var file) || file.Size != blob.Size)
        {
            throw new BundleFormatException(Path, blob.Digest.ToString(), $"blob of {blob.Size} bytes is not in the archive");
        }

        return ValueTask.FromResult<Stream>(new ArchiveBlobStream(_tar, Path, file, blob.Digest));
    }

    /// <summary>Whether the archive holds this blob (by its name or, for a docker save file, its content).</summary>
    public bool HasBlob(Descriptor blob) =>
        _synthesised.ContainsKey(blob.Digest) || (_blobs.TryGetValue(blob.Digest, out var file) && file.Size == blob.Size);

    public ValueTask DisposeAsync()
    {
        _tar.Dispose();
        DeleteQuietly(_spool);
        return ValueTask.CompletedTask;
    }

    private static void DeleteQuietly(string? file)
    {
        try
        {
            if (file is not null)
            {
                File.Delete(file);
            }
        }
        catch (IOException)
        {
            // A leftover temp file is harmless; the original error matters more.
        }
    }

    /// <summary>One pass over the tar, then the image graph check.</summary>
    private sealed class Reader(string path, ArchiveLimits limits)
    {
        private readonly Dictionary<string, ArchiveFile> _files = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);

        /// <summary>The tar read in place: the archive itself, or the spool its decompressed tar went to.</summary>
        public SafeFileHandle? Tar { get; private set; }

        public string? SpoolPath { get; private set; }

        public Dictionary<Digest, ArchiveFile> Blobs { get; } = [];

        public Dictionary<Digest, byte[]> Synthesised { get; } = [];

        public List<Descriptor> Entries { get; } = [];

        public async Task<(ArchiveFormat, ArchiveCompression)> ReadAsync(CancellationToken cancellationToken)
        {
            var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            ArchiveCompression compression;
            await using (file.ConfigureAwait(false))
            {
                var head = new byte[ArchiveCodecs.DetectLength];
                var headLength = await file.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                compression = ArchiveCodecs.Detect(head.AsSpan(0, headLength))
                    ?? throw Refuse(null, headLength == 0
                        ? "file is empty"
                        : $"unknown format: neither a tar archive nor gzip, zstd, lz4 or bzip2 compressed (starts with {Convert.ToHexString(head, 0, Math.Min(8, headLength))})");
                file.Position = 0;
                if (compression == ArchiveCompression.None)
                {
                    Tar = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.Asynchronous);
                    await ReadEntriesAsync(file, file, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await ReadCompressedAsync(file, compression, cancellationToken).ConfigureAwait(false);
                }
            }

            ResolveLinks();
            foreach (var (name, entry) in _files)
            {
                if (name.StartsWith("blobs/", StringComparison.Ordinal) || !Blobs.ContainsKey(entry.Digest))
                {
                    Blobs[entry.Digest] = entry;
                }
            }

            if (_files.ContainsKey("index.json"))
            {
                await ReadOciIndexAsync(cancellationToken).ConfigureAwait(false);
                return (ArchiveFormat.OciLayout, compression);
            }

            if (_files.ContainsKey("manifest.json"))
            {
                await ReadDockerManifestAsync(cancellationToken).ConfigureAwait(false);
                return (ArchiveFormat.DockerArchive, compression);
            }

            throw Refuse(null, "not an image archive: it has neither index.json (OCI layout) nor manifest.json (docker save)");
        }

        // The decompressed tar is written to a spool file as it is read, so its entries are indexed by their offset there.
        private async Task ReadCompressedAsync(FileStream file, ArchiveCompression compression, CancellationToken cancellationToken)
        {
            SpoolPath = System.IO.Path.Combine(limits.SpoolDirectory ?? System.IO.Path.GetTempPath(), $"airlock-archive-{Guid.NewGuid():N}.tar");
            var spool = new FileStream(SpoolPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 1 << 16, FileOptions.Asynchronous);
            await using (spool.ConfigureAwait(false))
            {
                try
                {
                    var expanded = ArchiveCodecs.OpenRead(file, compression);
                    await using (expanded.ConfigureAwait(false))
                    {
                        var tee = new SpoolingStream(new ExpansionGuard(expanded, file, isCompressed: true, limits), spool);
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

        private async Task ReadOciIndexAsync(CancellationToken cancellationToken)
        {
            ManifestDocument index;
            try
            {
                index = ManifestDocument.Parse(await ReadMetadataAsync("index.json", cancellationToken).ConfigureAwait(false), MediaTypes.OciIndex);
            }
            catch (ManifestFormatException ex)
            {
                throw Refuse("index.json", ex.Message, ex);
            }

            foreach (var entry in index.Manifests)
            {
                await CheckGraphAsync(entry, "index.json", cancellationToken).ConfigureAwait(false);
                AddEntry(entry);
            }
        }

        // Every blob a manifest names must be in the archive, so a load never fails half-way.
        private async Task CheckGraphAsync(Descriptor content, string referredFrom, CancellationToken cancellationToken)
        {
            if (!Blobs.TryGetValue(content.Digest, out var file) || file.Size != content.Size)
            {
                if (!content.MediaType.Contains("foreign", StringComparison.Ordinal) && !content.MediaType.Contains("nondistributable", StringComparison.Ordinal))
                {
                    throw Refuse(referredFrom, $"refers to {content.Digest} ({content.Size} bytes), which is not in the archive");
                }

                return;
            }

            if (!MediaTypes.IsManifest(content.MediaType))
            {
                return;
            }

            var entryName = file.Entry;
            if (file.Size > MaxMetadataSize)
            {
                throw Refuse(entryName, $"manifest of {file.Size} bytes is larger than the {MaxMetadataSize} allowed");
            }

            ManifestDocument document;
            try
            {
                document = ManifestDocument.Parse(await ReadVerifiedAsync(Tar!, path, file, content.Digest, cancellationToken).ConfigureAwait(false), content.MediaType);
            }
            catch (ManifestFormatException ex)
            {
                throw Refuse(entryName, ex.Message, ex);
            }

            foreach (var child in document.Children)
            {
                await CheckGraphAsync(child, entryName, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// A <c>docker save</c> archive has no manifests, only <c>manifest.json</c>; each image's manifest is
        /// synthesised the way skopeo and podman do it (containers/image docker/internal/tarfile): Docker
        /// schema 2, config <c>application/vnd.docker.container.image.v1+json</c>, each layer described by the
        /// digest and size of the file as stored — for the uncompressed <c>layer.tar</c> of docker save that is
        /// the layer's diff ID — and serialised compactly in Go's field order. The manifest digests therefore
        /// equal what <c>skopeo inspect docker-archive:</c> reports; registries store the same bytes when pushed.
        /// </summary>
        private async Task ReadDockerManifestAsync(CancellationToken cancellationToken)
        {
            List<DockerArchiveImage> images;
            try
            {
                images = JsonSerializer.Deserialize(await ReadMetadataAsync("manifest.json", cancellationToken).ConfigureAwait(false),
                    BundleJsonContext.Default.ListDockerArchiveImage) ?? [];
            }
            catch (JsonException ex)
            {
                throw Refuse("manifest.json", $"is not valid JSON ({ex.Message})", ex);
            }

            if (images.Count == 0)
            {
                throw Refuse("manifest.json", "lists no images");
            }

            foreach (var image in images)
            {
                var config = Lookup(image.Config, "Config");
                var layers = new List<DockerSchema2Descriptor>();
                foreach (var layerPath in image.Layers ?? [])
                {
                    var layer = Lookup(layerPath, "Layers");
                    var mediaType = await LayerMediaTypeAsync(layer, layerPath, cancellationToken).ConfigureAwait(false);
                    layers.Add(new DockerSchema2Descriptor { MediaType = mediaType, Size = layer.Size, Digest = layer.Digest.ToString() });
                }

                var manifest = BundleJson.Serialize(new DockerSchema2Manifest
                {
                    Config = new DockerSchema2Descriptor { MediaType = MediaTypes.DockerConfig, Size = config.Size, Digest = config.Digest.ToString() },
                    Layers = layers,
                }, BundleJsonContext.Default.DockerSchema2Manifest);
                var descriptor = new Descriptor { MediaType = MediaTypes.DockerManifest, Digest = Digest.Sha256(manifest), Size = manifest.Length };
                Synthesised[descriptor.Digest] = manifest;
                var tags = image.RepoTags ?? [];
                if (tags.Count == 0)
                {
                    AddEntry(descriptor);
                }

                foreach (var tag in tags)
                {
                    var name = ImageReference.TryParse(tag, out var parsed) ? parsed.ToString() : tag;
                    AddEntry(OciLayoutStore.NamedEntry(descriptor, name));
                }
            }
        }

        private ArchiveFile Lookup(string? entryPath, string field)
        {
            if (string.IsNullOrEmpty(entryPath))
            {
                throw Refuse("manifest.json", $"an image has no {field}");
            }

            var name = NormaliseName(entryPath, "manifest.json");
            return _files.TryGetValue(name, out var file)
                ? file
                : throw Refuse("manifest.json", $"{field} refers to \"{entryPath}\", which is not in the archive");
        }

        // containers/image labels every docker-archive layer with the schema 2 layer type whatever its
        // compression (consumers detect compression by content); only compressions images may use are accepted.
        private async Task<string> LayerMediaTypeAsync(ArchiveFile layer, string entryPath, CancellationToken cancellationToken)
        {
            var head = new byte[(int)Math.Min(ArchiveCodecs.DetectLength, layer.Size)];
            var length = await RandomAccess.ReadAsync(Tar!, head, layer.Offset, cancellationToken).ConfigureAwait(false);

            return ArchiveCodecs.Detect(head.AsSpan(0, length)) switch
            {
                ArchiveCompression.Zstd => MediaTypes.OciLayerZstd,
                ArchiveCompression.None or ArchiveCompression.Gzip => MediaTypes.DockerLayerGzip,
                _ when length == 0 => MediaTypes.DockerLayerGzip,
                var other => throw Refuse(entryPath, $"layer is {other?.ToString() ?? "not a tar archive"}; image layers must be tar, gzip or zstd"),
            };
        }

        private async Task<byte[]> ReadMetadataAsync(string name, CancellationToken cancellationToken)
        {
            var file = _files[name];
            if (file.Size > MaxMetadataSize)
            {
                throw Refuse(name, $"is {file.Size} bytes, larger than the {MaxMetadataSize} allowed");
            }

            return await ReadVerifiedAsync(Tar!, path, file, file.Digest, cancellationToken).ConfigureAwait(false);
        }

        // As OciLayoutStore.AddEntryAsync: an entry replaces one with the same name.
        private void AddEntry(Descriptor entry)
        {
            var name = OciLayoutStore.NameOf(entry);
            Entries.RemoveAll(e => name is null ? OciLayoutStore.NameOf(e) is null && e.Digest == entry.Digest : OciLayoutStore.NameOf(e) == name);
            Entries.Add(entry);
        }

        /// <summary>
        /// An entry name made canonical (<c>./</c>, empty and trailing separators dropped); absolute names and
        /// <c>..</c> are refused outright rather than cleaned, since no honest archive writer produces them.
        /// </summary>
        private string NormaliseName(string raw, string entry, string what = "name")
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

        private BundleFormatException Refuse(string? entry, string problem, Exception? inner = null) => new(path, entry, problem, inner);
    }

    /// <summary>A small entry (a manifest, index or metadata file) read whole and checked against <paramref name="digest"/>.</summary>
    private static async Task<byte[]> ReadVerifiedAsync(SafeFileHandle tar, string path, ArchiveFile file, Digest digest, CancellationToken cancellationToken)
    {
        var content = new byte[file.Size];
        var stream = new ArchiveBlobStream(tar, path, file, digest);
        await using (stream.ConfigureAwait(false))
        {
            await stream.ReadExactlyAsync(content, cancellationToken).ConfigureAwait(false);
            await stream.VerifyAtEndAsync(cancellationToken).ConfigureAwait(false);
        }

        return content;
    }
}
