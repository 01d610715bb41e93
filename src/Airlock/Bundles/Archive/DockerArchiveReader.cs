using System.Text.Json;
using Airlock.Bundles.Layout;
using Airlock.Oci;

namespace Airlock.Bundles.Archive;

/// <summary>A <c>docker save</c> archive (before Docker 25, podman, skopeo <c>docker-archive:</c>): only <c>manifest.json</c>.</summary>
internal static class DockerArchiveReader
{
    /// <summary>
    /// A <c>docker save</c> archive has no manifests, only <c>manifest.json</c>; each image's manifest is
    /// synthesised the way skopeo and podman do it (containers/image docker/internal/tarfile): Docker
    /// schema 2, config <c>application/vnd.docker.container.image.v1+json</c>, each layer described by the
    /// digest and size of the file as stored — for the uncompressed <c>layer.tar</c> of docker save that is
    /// the layer's diff ID — and serialised compactly in Go's field order. The manifest digests therefore
    /// equal what <c>skopeo inspect docker-archive:</c> reports; registries store the same bytes when pushed.
    /// </summary>
    public static async Task<ArchiveImages> ReadAsync(TarIndex index, CancellationToken cancellationToken)
    {
        List<DockerArchiveImage> images;
        try
        {
            images = JsonSerializer.Deserialize(await ArchiveImages.ReadMetadataAsync(index, "manifest.json", cancellationToken).ConfigureAwait(false),
                BundleJsonContext.Default.ListDockerArchiveImage) ?? [];
        }
        catch (JsonException ex)
        {
            throw index.Refuse("manifest.json", $"is not valid JSON ({ex.Message})", ex);
        }

        if (images.Count == 0)
        {
            throw index.Refuse("manifest.json", "lists no images");
        }

        var found = new ArchiveImages();
        foreach (var image in images)
        {
            var config = Lookup(index, image.Config, "Config");
            var layers = new List<DockerSchema2Descriptor>();
            foreach (var layerPath in image.Layers ?? [])
            {
                var layer = Lookup(index, layerPath, "Layers");
                var mediaType = await LayerMediaTypeAsync(index, layer, layerPath, cancellationToken).ConfigureAwait(false);
                layers.Add(new DockerSchema2Descriptor { MediaType = mediaType, Size = layer.Size, Digest = layer.Digest.ToString() });
            }

            var manifest = BundleJson.Serialize(new DockerSchema2Manifest
            {
                Config = new DockerSchema2Descriptor { MediaType = MediaTypes.DockerConfig, Size = config.Size, Digest = config.Digest.ToString() },
                Layers = layers,
            }, BundleJsonContext.Default.DockerSchema2Manifest);
            var descriptor = new Descriptor { MediaType = MediaTypes.DockerManifest, Digest = Digest.Sha256(manifest), Size = manifest.Length };
            found.Synthesised[descriptor.Digest] = manifest;
            var tags = image.RepoTags ?? [];
            if (tags.Count == 0)
            {
                found.Add(descriptor);
            }

            foreach (var tag in tags)
            {
                var name = ImageReference.TryParse(tag, out var parsed) ? parsed.ToString() : tag;
                found.Add(OciLayoutStore.NamedEntry(descriptor, name));
            }
        }

        return found;
    }

    private static ArchiveFile Lookup(TarIndex index, string? entryPath, string field)
    {
        if (string.IsNullOrEmpty(entryPath))
        {
            throw index.Refuse("manifest.json", $"an image has no {field}");
        }

        var name = index.NormaliseName(entryPath, "manifest.json");
        return index.Files.TryGetValue(name, out var file)
            ? file
            : throw index.Refuse("manifest.json", $"{field} refers to \"{entryPath}\", which is not in the archive");
    }

    // containers/image labels every docker-archive layer with the schema 2 layer type whatever its
    // compression (consumers detect compression by content); only compressions images may use are accepted.
    private static async Task<string> LayerMediaTypeAsync(TarIndex index, ArchiveFile layer, string entryPath, CancellationToken cancellationToken)
    {
        var head = new byte[(int)Math.Min(ArchiveCodecs.DetectLength, layer.Size)];
        var length = await RandomAccess.ReadAsync(index.Tar, head, layer.Offset, cancellationToken).ConfigureAwait(false);

        return ArchiveCodecs.Detect(head.AsSpan(0, length)) switch
        {
            ArchiveCompression.Zstd => MediaTypes.OciLayerZstd,
            ArchiveCompression.None or ArchiveCompression.Gzip => MediaTypes.DockerLayerGzip,
            _ when length == 0 => MediaTypes.DockerLayerGzip,
            var other => throw index.Refuse(entryPath, $"layer is {other?.ToString() ?? "not a tar archive"}; image layers must be tar, gzip or zstd"),
        };
    }
}
