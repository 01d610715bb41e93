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
/// An image archive opened for reading, in one pass over its tar and without copying its blobs. Three parts, each
/// on its own: <see cref="TarIndex"/> reads and checks the tar (the security boundary: every entry indexed by the
/// offset of its data, names, links, duplicates, truncation and decompression bombs refused, a compressed archive
/// spooled once to a temporary tar); <see cref="OciArchiveReader"/> or <see cref="DockerArchiveReader"/> then reads
/// what the files mean (an OCI layout's <c>index.json</c> with every manifest's graph checked to be in the archive, or
/// a <c>docker save</c> <c>manifest.json</c> whose manifests are synthesised as skopeo does); and this class serves
/// the images, reading blobs in place (<see cref="RandomAccess"/>, so several at once) and verifying them against
/// their names as they are read, so a blob whose content is not its name is refused, naming the entry, before any
/// manifest that needs it is written (<see cref="ImageGraph"/> writes children first).
/// </summary>
public sealed class ArchiveSource : IImageSource, IReferrerSource
{
    private readonly TarIndex _index;
    private readonly ArchiveImages _images;
    private readonly LayoutReferrers _referrers;

    private ArchiveSource(TarIndex index, ArchiveImages images, ArchiveFormat format)
    {
        Path = index.Path;
        _index = index;
        _images = images;
        Format = format;
        _referrers = new LayoutReferrers(this, () => _images.Entries);
    }

    public string Path { get; }

    public ArchiveFormat Format { get; }

    public ArchiveCompression Compression => _index.Compression;

    /// <summary>The images in the archive, as entries of its (possibly synthesised) <c>index.json</c>.</summary>
    public IReadOnlyList<Descriptor> Entries => _images.Entries;

    public static async Task<ArchiveSource> OpenAsync(string path, ArchiveLimits? limits, CancellationToken cancellationToken)
    {
        var index = await TarIndex.ReadAsync(path, limits ?? new ArchiveLimits(), cancellationToken).ConfigureAwait(false);
        try
        {
            if (index.Files.ContainsKey("index.json"))
            {
                return new ArchiveSource(index, await OciArchiveReader.ReadAsync(index, cancellationToken).ConfigureAwait(false), ArchiveFormat.OciLayout);
            }

            if (index.Files.ContainsKey("manifest.json"))
            {
                return new ArchiveSource(index, await DockerArchiveReader.ReadAsync(index, cancellationToken).ConfigureAwait(false), ArchiveFormat.DockerArchive);
            }

            throw index.Refuse(null, "not an image archive: it has neither index.json (OCI layout) nor manifest.json (docker save)");
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    public ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) =>
        ValueTask.FromResult(OciLayoutStore.Resolve(_images.Entries, reference, Path));

    /// <summary>The <c>index.json</c> entries whose manifest has <paramref name="subject"/> as its subject.</summary>
    public ValueTask<IReadOnlyList<Descriptor>> ReferrersAsync(Descriptor subject, CancellationToken cancellationToken) =>
        _referrers.FindAsync(subject, cancellationToken);

    /// <summary>Whether an entry is an artifact referring to another manifest (loaded with its subject, not under a name).</summary>
    public ValueTask<bool> IsReferrerAsync(Descriptor entry, CancellationToken cancellationToken) => _referrers.IsReferrerAsync(entry, cancellationToken);

    public async ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (_images.Synthesised.TryGetValue(manifest.Digest, out var synthesised))
        {
            return synthesised;
        }

        if (!_index.Blobs.TryGetValue(manifest.Digest, out var file) || file.Size != manifest.Size)
        {
            throw new BundleFormatException(Path, manifest.Digest.ToString(), "manifest is not in the archive");
        }

        if (file.Size > ArchiveImages.MaxMetadataSize)
        {
            throw new BundleFormatException(Path, file.Entry, $"manifest of {file.Size} bytes is larger than the {ArchiveImages.MaxMetadataSize} allowed");
        }

        return await _index.ReadVerifiedAsync(file, manifest.Digest, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        if (_images.Synthesised.TryGetValue(blob.Digest, out var synthesised))
        {
            return ValueTask.FromResult<Stream>(new MemoryStream(synthesised, writable: false));
        }

        if (!_index.Blobs.TryGetValue(blob.Digest, out var file) || file.Size != blob.Size)
        {
            throw new BundleFormatException(Path, blob.Digest.ToString(), $"blob of {blob.Size} bytes is not in the archive");
        }

        return ValueTask.FromResult<Stream>(new ArchiveBlobStream(_index.Tar, Path, file, blob.Digest));
    }

    /// <summary>Whether the archive holds this blob (by its name or, for a docker save file, its content).</summary>
    public bool HasBlob(Descriptor blob) =>
        _images.Synthesised.ContainsKey(blob.Digest) || (_index.Blobs.TryGetValue(blob.Digest, out var file) && file.Size == blob.Size);

    public ValueTask DisposeAsync()
    {
        _index.Dispose();
        return ValueTask.CompletedTask;
    }
}
