using System.Formats.Tar;
using System.Text.Json;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.Oci;

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
/// An image archive opened for reading. The tar is streamed once, whatever its compression, into a temporary
/// OCI layout on disk (never into memory), checking every entry on the way: names that escape, links
/// that point outside, device files, duplicates, blobs whose content is not their name, truncation and
/// decompression bombs are refused with <see cref="BundleFormatException"/>. Nothing is written outside the
/// temporary layout, which disposing removes. For a <c>docker save</c> archive without <c>index.json</c> the
/// image manifests are synthesised as skopeo does (see <see cref="ReadDockerManifestAsync"/>).
/// </summary>
public sealed class ArchiveSource : IImageSource
{
    private const int MaxLinkHops = 16;
    private const int MaxMetadataSize = OciLayoutStore.MaxManifestSize;

    private readonly OciLayoutStore _layout;

    private ArchiveSource(string path, OciLayoutStore layout, ArchiveFormat format, ArchiveCompression compression)
    {
        Path = path;
        _layout = layout;
        Format = format;
        Compression = compression;
    }

    public string Path { get; }

    public ArchiveFormat Format { get; }

    public ArchiveCompression Compression { get; }

    /// <summary>The images in the archive, as entries of its (possibly synthesised) <c>index.json</c>.</summary>
    public IReadOnlyList<Descriptor> Entries => _layout.Entries;

    public static async Task<ArchiveSource> OpenAsync(string path, ArchiveLimits? limits, CancellationToken cancellationToken)
    {
        limits ??= new ArchiveLimits();
        var spool = System.IO.Path.Combine(limits.SpoolDirectory ?? System.IO.Path.GetTempPath(), $"airlock-archive-{Guid.NewGuid():N}");
        // Scratch, deleted on dispose: no fsync per blob (it doubled the time of an images-directory import).
        var layout = OciLayoutStore.Create(spool);
        layout.Durable = false;
        try
        {
            var reader = new Reader(path, layout, limits);
            var (format, compression) = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return new ArchiveSource(path, layout, format, compression);
        }
        catch
        {
            await layout.DisposeAsync().ConfigureAwait(false);
            DeleteQuietly(spool);
            throw;
        }
    }

    public ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) => _layout.ResolveAsync(reference, cancellationToken);

    public ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken) =>
        _layout.ReadManifestAsync(manifest, cancellationToken);

    public ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken) => _layout.OpenBlobAsync(blob, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _layout.DisposeAsync().ConfigureAwait(false);
        DeleteQuietly(_layout.Root);
    }

    private static void DeleteQuietly(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless; the original error matters more.
        }
    }

    /// <summary>One pass over the tar, then the image graph check.</summary>
    private sealed class Reader(string path, OciLayoutStore layout, ArchiveLimits limits)
    {
        private readonly Dictionary<string, (Digest Digest, long Size)> _files = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);

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
                await ReadEntriesAsync(file, compression, cancellationToken).ConfigureAwait(false);
            }

            ResolveLinks();
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

        private async Task ReadEntriesAsync(FileStream file, ArchiveCompression compression, CancellationToken cancellationToken)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            string? current = null;
            try
            {
                var expanded = ArchiveCodecs.OpenRead(file, compression);
                await using (expanded.ConfigureAwait(false))
                {
                    var guarded = new ExpansionGuard(expanded, file, compression != ArchiveCompression.None, limits);
                    var tar = new TarReader(guarded, leaveOpen: true);
                    await using (tar.ConfigureAwait(false))
                    {
                        TarEntry? entry;
                        while ((entry = await tar.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false)) is not null)
                        {
                            current = entry.Name;
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
                                    await IngestAsync(entry, name, cancellationToken).ConfigureAwait(false);
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
            }
            catch (Exception ex) when (ex is not BundleFormatException and not OperationCanceledException)
            {
                throw Refuse(current, ex switch
                {
                    EndOfStreamException => "archive is truncated",
                    DecompressionLimitException => ex.Message,
                    _ => $"archive is corrupt or truncated ({ex.Message})",
                }, ex);
            }
        }

        private async Task IngestAsync(TarEntry entry, string name, CancellationToken cancellationToken)
        {
            var named = BlobName(name, entry.Name);
            var ingest = layout.StartIngest(named?.Algorithm ?? Digest.Sha256Algorithm);
            try
            {
                if (entry.DataStream is { } data)
                {
                    await ingest.CopyFromAsync(data, cancellationToken).ConfigureAwait(false);
                }

                if (ingest.Length != entry.Length)
                {
                    throw Refuse(entry.Name, $"archive is truncated: the entry ends after {ingest.Length} of {entry.Length} bytes");
                }

                var actual = ingest.CurrentDigest(named?.Algorithm ?? Digest.Sha256Algorithm);
                if (named is { } expected && actual != expected)
                {
                    throw Refuse(entry.Name, $"content does not match its name (the content is {actual})");
                }

                await ingest.CommitAsync(actual, layout.BlobPath(actual), cancellationToken, entry.Length).ConfigureAwait(false);
                _files[name] = (actual, entry.Length);
            }
            catch
            {
                await ingest.AbortAsync().ConfigureAwait(false);
                throw;
            }
            finally
            {
                await ingest.DisposeAsync().ConfigureAwait(false);
            }
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
                    throw Refuse(link, $"content does not match its name (the content is {file.Digest})");
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
                await layout.AddEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            }
        }

        // Every blob a manifest names must be in the archive, so a load never fails half-way.
        private async Task CheckGraphAsync(Descriptor content, string referredFrom, CancellationToken cancellationToken)
        {
            if (!await layout.HasBlobAsync(content, cancellationToken).ConfigureAwait(false))
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

            var entryName = $"blobs/{content.Digest.Algorithm}/{content.Digest.Encoded}";
            ManifestDocument document;
            try
            {
                document = ManifestDocument.Parse((await layout.ReadManifestAsync(content, cancellationToken).ConfigureAwait(false)).Span, content.MediaType);
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
                    layers.Add(new DockerSchema2Descriptor { MediaType = LayerMediaType(layer.Digest, layerPath), Size = layer.Size, Digest = layer.Digest.ToString() });
                }

                var manifest = BundleJson.Serialize(new DockerSchema2Manifest
                {
                    Config = new DockerSchema2Descriptor { MediaType = MediaTypes.DockerConfig, Size = config.Size, Digest = config.Digest.ToString() },
                    Layers = layers,
                }, BundleJsonContext.Default.DockerSchema2Manifest);
                var descriptor = new Descriptor { MediaType = MediaTypes.DockerManifest, Digest = Digest.Sha256(manifest), Size = manifest.Length };
                await layout.WriteManifestAsync(descriptor, manifest, null, cancellationToken).ConfigureAwait(false);
                var tags = image.RepoTags ?? [];
                if (tags.Count == 0)
                {
                    await layout.AddEntryAsync(descriptor, cancellationToken).ConfigureAwait(false);
                }

                foreach (var tag in tags)
                {
                    var name = ImageReference.TryParse(tag, out var parsed) ? parsed.ToString() : tag;
                    await layout.AddEntryAsync(OciLayoutStore.NamedEntry(descriptor, name), cancellationToken).ConfigureAwait(false);
                }
            }
        }

        private (Digest Digest, long Size) Lookup(string? entryPath, string field)
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
        private string LayerMediaType(Digest layer, string entryPath)
        {
            var head = new byte[ArchiveCodecs.DetectLength];
            int length;
            using (var file = File.OpenRead(layout.BlobPath(layer)))
            {
                length = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            }

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
            var (digest, size) = _files[name];
            if (size > MaxMetadataSize)
            {
                throw Refuse(name, $"is {size} bytes, larger than the {MaxMetadataSize} allowed");
            }

            return await File.ReadAllBytesAsync(layout.BlobPath(digest), cancellationToken).ConfigureAwait(false);
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
}
