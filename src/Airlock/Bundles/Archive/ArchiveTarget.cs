using System.Formats.Tar;
using System.Text.Json;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Bundles.Archive;

/// <summary>
/// An image archive being written. Content is staged in an OCI layout beside the output file (a graph copy
/// writes blobs in parallel and in any order; a tar is sequential), and <see cref="CompleteAsync"/> streams
/// it into one tar, compressed as asked, renamed into place only when whole.
/// <para>
/// <see cref="ArchiveFormat.DockerArchive"/> writes what <c>ctr images export</c> and Docker 25+ write: a tar
/// that is an OCI layout (multi-arch indexes kept whole in <c>index.json</c>) and also carries Docker's
/// <c>manifest.json</c> and <c>repositories</c>, pointing at <c>blobs/sha256/…</c> for the host-platform
/// image of every name, so <c>docker load</c>, <c>podman load</c>, <c>skopeo docker-archive:</c>,
/// <c>ctr images import</c> and the K3s images directory all read it. <see cref="ArchiveFormat.OciLayout"/>
/// writes the OCI layout alone. Blobs shared by images are stored once.
/// </para>
/// </summary>
public sealed class ArchiveTarget : IImageTarget
{
    private readonly OciLayoutStore _staging;
    private bool _completed;

    private ArchiveTarget(string path, ArchiveFormat format, ArchiveCompression compression, OciLayoutStore staging)
    {
        Path = path;
        Format = format;
        Compression = compression;
        _staging = staging;
    }

    public string Path { get; }

    public ArchiveFormat Format { get; }

    public ArchiveCompression Compression { get; }

    /// <summary>Starts an archive at <paramref name="path"/>; <paramref name="compression"/> defaults to what the file name says.</summary>
    public static ArchiveTarget Create(string path, ArchiveFormat format = ArchiveFormat.DockerArchive, ArchiveCompression? compression = null)
    {
        var full = System.IO.Path.GetFullPath(path);
        var staging = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!, $".{System.IO.Path.GetFileName(full)}.airlock-{Guid.NewGuid():N}");
        return new ArchiveTarget(full, format, compression ?? ArchiveCodecs.FromFileName(full), OciLayoutStore.Create(staging));
    }

    public ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken) => _staging.HasBlobAsync(blob, cancellationToken);

    public ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken) =>
        _staging.WriteBlobAsync(blob, content, cancellationToken);

    public ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken) => _staging.HasManifestAsync(manifest, cancellationToken);

    public ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken) =>
        _staging.WriteManifestAsync(manifest, content, reference, cancellationToken);

    /// <summary>Writes the archive file from everything copied in; without this, disposing leaves no file.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        var partial = $"{Path}.partial-{Guid.NewGuid():N}";
        try
        {
            var file = new FileStream(partial, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                var compressed = ArchiveCodecs.OpenWrite(file, Compression);
                try
                {
                    var tar = new TarWriter(compressed, TarEntryFormat.Ustar, leaveOpen: true);
                    await using (tar.ConfigureAwait(false))
                    {
                        await WriteEntriesAsync(tar, cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    // Synchronous dispose: SharpCompress's bzip2 writes its final block only there.
                    if (!ReferenceEquals(compressed, file))
                    {
                        compressed.Dispose();
                    }
                }

                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            File.Move(partial, Path, overwrite: true);
            _completed = true;
        }
        finally
        {
            if (!_completed)
            {
                File.Delete(partial);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _staging.DisposeAsync().ConfigureAwait(false);
        System.IO.Directory.Delete(_staging.Root, recursive: true);
    }

    private async Task WriteEntriesAsync(TarWriter tar, CancellationToken cancellationToken)
    {
        await WriteFileAsync(tar, "oci-layout", File.ReadAllBytes(System.IO.Path.Combine(_staging.Root, "oci-layout")), cancellationToken).ConfigureAwait(false);
        await tar.WriteEntryAsync(FolderEntry("blobs/"), cancellationToken).ConfigureAwait(false);
        foreach (var algorithm in System.IO.Directory.GetDirectories(System.IO.Path.Combine(_staging.Root, "blobs")).Order(StringComparer.Ordinal))
        {
            var folder = $"blobs/{System.IO.Path.GetFileName(algorithm)}/";
            await tar.WriteEntryAsync(FolderEntry(folder), cancellationToken).ConfigureAwait(false);
            foreach (var blob in System.IO.Directory.GetFiles(algorithm).Order(StringComparer.Ordinal))
            {
                var content = new FileStream(blob, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
                await using (content.ConfigureAwait(false))
                {
                    var entry = new UstarTarEntry(TarEntryType.RegularFile, folder + System.IO.Path.GetFileName(blob))
                    {
                        DataStream = content,
                        Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                        ModificationTime = DateTimeOffset.UnixEpoch,
                    };
                    await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        await WriteFileAsync(tar, "index.json", File.ReadAllBytes(System.IO.Path.Combine(_staging.Root, "index.json")), cancellationToken).ConfigureAwait(false);
        if (Format == ArchiveFormat.DockerArchive)
        {
            var (manifest, repositories) = await DockerManifestAsync(cancellationToken).ConfigureAwait(false);
            await WriteFileAsync(tar, "manifest.json", BundleJson.Serialize(manifest, BundleJsonContext.Default.ListDockerArchiveImage), cancellationToken).ConfigureAwait(false);
            await WriteFileAsync(tar, "repositories",
                BundleJson.Serialize(repositories, BundleJsonContext.Default.DictionaryStringDictionaryStringString), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Docker's view of the archive: one <c>manifest.json</c> image per image manifest, with every name that
    /// points at it; a multi-arch name contributes its host-platform image (else its first Linux one), since
    /// Docker's format holds one image per name.
    /// </summary>
    private async Task<(List<DockerArchiveImage>, Dictionary<string, Dictionary<string, string>>)> DockerManifestAsync(CancellationToken cancellationToken)
    {
        var images = new List<(Digest Manifest, ManifestDocument Document, List<string> Tags)>();
        var repositories = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var entry in _staging.Entries)
        {
            var image = await ImageManifestForHostAsync(entry, cancellationToken).ConfigureAwait(false);
            if (image is null)
            {
                continue;
            }

            var (descriptor, document) = image.Value;
            var existing = images.FindIndex(i => i.Manifest == descriptor.Digest);
            if (existing < 0)
            {
                images.Add((descriptor.Digest, document, []));
                existing = images.Count - 1;
            }

            if (OciLayoutStore.NameOf(entry) is { } name && OciLayoutStore.IsFullReference(name)
                && ImageReference.TryParse(name, out var reference) && reference.Tag is { } tag)
            {
                images[existing].Tags.Add(reference.ToString());
                if (document.Layers.Count > 0)
                {
                    var repository = repositories.TryGetValue(reference.Name, out var tags) ? tags : repositories[reference.Name] = new(StringComparer.Ordinal);
                    repository[tag] = document.Layers[^1].Digest.Encoded;
                }
            }
        }

        var manifest = images.Select(i => new DockerArchiveImage
        {
            Config = BlobEntry(i.Document.Config!.Digest),
            RepoTags = i.Tags.Count > 0 ? i.Tags : null,
            Layers = i.Document.Layers.Select(l => BlobEntry(l.Digest)).ToList(),
        }).ToList();
        return (manifest, repositories);
    }

    private async Task<(Descriptor, ManifestDocument)?> ImageManifestForHostAsync(Descriptor entry, CancellationToken cancellationToken)
    {
        if (!MediaTypes.IsManifest(entry.MediaType))
        {
            return null;
        }

        var document = ManifestDocument.Parse((await _staging.ReadManifestAsync(entry, cancellationToken).ConfigureAwait(false)).Span, entry.MediaType);
        if (!document.IsIndex)
        {
            return document.Config is null ? null : (entry, document);
        }

        var candidates = document.Manifests.Where(m => MediaTypes.IsImageManifest(m.MediaType)).ToList();
        var chosen = candidates.FirstOrDefault(m => Platform.Host.Matches(m.Platform))
            ?? candidates.FirstOrDefault(m => m.Platform?.Os == "linux" && m.Platform.Architecture != "unknown");
        if (chosen is null || !await _staging.HasManifestAsync(chosen, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        return await ImageManifestForHostAsync(chosen, cancellationToken).ConfigureAwait(false);
    }

    private static string BlobEntry(Digest digest) => $"blobs/{digest.Algorithm}/{digest.Encoded}";

    private static UstarTarEntry FolderEntry(string name) => new(TarEntryType.Directory, name)
    {
        Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
        ModificationTime = DateTimeOffset.UnixEpoch,
    };

    private static async Task WriteFileAsync(TarWriter tar, string name, byte[] content, CancellationToken cancellationToken)
    {
        using var data = new MemoryStream(content, writable: false);
        var entry = new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = data,
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            ModificationTime = DateTimeOffset.UnixEpoch,
        };
        await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
    }
}
