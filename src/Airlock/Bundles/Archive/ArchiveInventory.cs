using System.Text.Json;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Bundles.Archive;

/// <summary>One image in an archive or layout.</summary>
public sealed record InventoryImage(string? Name, Digest Digest, string MediaType, IReadOnlyList<string> Platforms, long Size);

/// <summary>What an archive or layout holds: names, digests, platforms and total size (each blob counted once per image).</summary>
public static class ArchiveInventory
{
    public static async Task<IReadOnlyList<InventoryImage>> ListAsync(IImageSource source, IReadOnlyList<Descriptor> entries, CancellationToken cancellationToken)
    {
        var images = new List<InventoryImage>();
        foreach (var entry in entries)
        {
            var platforms = new SortedSet<string>(StringComparer.Ordinal);
            var blobs = new Dictionary<Digest, long>();
            await WalkAsync(source, entry, platforms, blobs, cancellationToken).ConfigureAwait(false);
            images.Add(new InventoryImage(OciLayoutStore.NameOf(entry), entry.Digest, entry.MediaType, [.. platforms], blobs.Values.Sum()));
        }

        return images;
    }

    private static async Task WalkAsync(IImageSource source, Descriptor content, SortedSet<string> platforms, Dictionary<Digest, long> blobs,
        CancellationToken cancellationToken)
    {
        if (!blobs.TryAdd(content.Digest, content.Size) || !MediaTypes.IsManifest(content.MediaType))
        {
            return;
        }

        var document = ManifestDocument.Parse((await source.ReadManifestAsync(content, cancellationToken).ConfigureAwait(false)).Span, content.MediaType);
        if (document.IsIndex)
        {
            foreach (var child in document.Manifests)
            {
                await WalkAsync(source, child, platforms, blobs, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        foreach (var blob in document.Children)
        {
            blobs.TryAdd(blob.Digest, blob.Size);
        }

        if (content.Platform is { } declared)
        {
            platforms.Add(declared.ToString());
        }
        else if (document.Config is { } config && await PlatformOfConfigAsync(source, config, cancellationToken).ConfigureAwait(false) is { } platform)
        {
            platforms.Add(platform.ToString());
        }
    }

    /// <summary>The platform an image config declares (a manifest outside an index says it only there).</summary>
    internal static async Task<Platform?> PlatformOfConfigAsync(IImageSource source, Descriptor config, CancellationToken cancellationToken)
    {
        if (config.Size > OciLayoutStore.MaxManifestSize)
        {
            return null;
        }

        var stream = await source.OpenBlobAsync(config, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var parsed = await JsonSerializer.DeserializeAsync(stream, ImageConfigJsonContext.Default.ImageConfig, cancellationToken).ConfigureAwait(false);
            return parsed?.Platform;
        }
    }
}
