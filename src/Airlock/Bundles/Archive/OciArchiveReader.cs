using Airlock.Oci;

namespace Airlock.Bundles.Archive;

/// <summary>
/// An OCI layout in a tar (<c>oci-archive:</c>, <c>ctr export</c>, Docker 25+ and Airlock's own): the images are the
/// entries of <c>index.json</c>, and every manifest's graph is checked to be in the archive, so a load never fails
/// half-way. Blobs are verified against their names when they are read.
/// </summary>
internal static class OciArchiveReader
{
    public static async Task<ArchiveImages> ReadAsync(TarIndex index, CancellationToken cancellationToken)
    {
        ManifestDocument document;
        try
        {
            document = ManifestDocument.Parse(await ArchiveImages.ReadMetadataAsync(index, "index.json", cancellationToken).ConfigureAwait(false), MediaTypes.OciIndex);
        }
        catch (ManifestFormatException ex)
        {
            throw index.Refuse("index.json", ex.Message, ex);
        }

        var images = new ArchiveImages();
        foreach (var entry in document.Manifests)
        {
            await CheckGraphAsync(index, entry, "index.json", cancellationToken).ConfigureAwait(false);
            images.Add(entry);
        }

        return images;
    }

    // Every blob a manifest names must be in the archive, so a load never fails half-way.
    private static async Task CheckGraphAsync(TarIndex index, Descriptor content, string referredFrom, CancellationToken cancellationToken)
    {
        if (!index.Blobs.TryGetValue(content.Digest, out var file) || file.Size != content.Size)
        {
            if (!content.MediaType.Contains("foreign", StringComparison.Ordinal) && !content.MediaType.Contains("nondistributable", StringComparison.Ordinal))
            {
                throw index.Refuse(referredFrom, $"refers to {content.Digest} ({content.Size} bytes), which is not in the archive");
            }

            return;
        }

        if (!MediaTypes.IsManifest(content.MediaType))
        {
            return;
        }

        var entryName = file.Entry;
        if (file.Size > ArchiveImages.MaxMetadataSize)
        {
            throw index.Refuse(entryName, $"manifest of {file.Size} bytes is larger than the {ArchiveImages.MaxMetadataSize} allowed");
        }

        ManifestDocument document;
        try
        {
            document = ManifestDocument.Parse(await index.ReadVerifiedAsync(file, content.Digest, cancellationToken).ConfigureAwait(false), content.MediaType);
        }
        catch (ManifestFormatException ex)
        {
            throw index.Refuse(entryName, ex.Message, ex);
        }

        foreach (var child in document.Children)
        {
            await CheckGraphAsync(index, child, entryName, cancellationToken).ConfigureAwait(false);
        }
    }
}
