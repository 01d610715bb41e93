using System.Text;
using System.Text.Json;
using Airlock.Oci;
using Microsoft.Extensions.Logging;

namespace Airlock.Node.Containerd;

/// <summary>
/// Unpacks an image manifest's layers into a snapshotter the way containerd's own unpacker does
/// (unpacker.go), so the CRI can start containers from it without a pull: one committed snapshot per
/// layer named by its chain ID, layers containerd has already unpacked skipped.
/// </summary>
internal sealed class ImageUnpacker(ContainerdClient client, string snapshotter, ILogger logger)
{
    // Image configs are small; this only guards against a hostile one.
    private const int MaxConfigSize = 16 * 1024 * 1024;

    /// <summary>Unpacks and returns the chain ID of the top layer (the image's root filesystem).</summary>
    public async Task<string> UnpackAsync(ManifestDocument manifest, CancellationToken cancellationToken)
    {
        var config = manifest.Config ?? throw new ManifestFormatException("image manifest has no config");
        var diffIds = await ReadDiffIdsAsync(config, cancellationToken).ConfigureAwait(false);
        if (diffIds.Count != manifest.Layers.Count)
        {
            throw new ManifestFormatException($"image config {config.Digest} lists {diffIds.Count} diff IDs for {manifest.Layers.Count} layers");
        }

        string? parent = null;
        for (var i = 0; i < manifest.Layers.Count; i++)
        {
            var chainId = parent is null ? diffIds[i].ToString() : Digest.Sha256(Encoding.UTF8.GetBytes(parent + " " + diffIds[i])).ToString();
            await UnpackLayerAsync(manifest.Layers[i], diffIds[i], chainId, parent, cancellationToken).ConfigureAwait(false);
            parent = chainId;
        }

        var top = parent ?? throw new ManifestFormatException("image manifest has no layers to unpack");
        await client.Content.UpdateLabelsAsync(
            config.Digest,
            new Dictionary<string, string> { [ContainerdLabels.GcSnapshotPrefix + snapshotter] = top },
            cancellationToken).ConfigureAwait(false);
        logger.LogDebug("Unpacked {Config} into {Snapshotter} as {ChainId}", config.Digest, snapshotter, top);
        return top;
    }

    private async Task UnpackLayerAsync(Descriptor layer, Digest diffId, string chainId, string? parent, CancellationToken cancellationToken)
    {
        if (await client.Snapshots.StatAsync(snapshotter, chainId, cancellationToken).ConfigureAwait(false) is not null)
        {
            return;
        }

        var labels = new Dictionary<string, string> { [ContainerdLabels.SnapshotRef] = chainId };
        var key = $"extract-{Guid.NewGuid():N} {chainId}";
        var mounts = await client.Snapshots.PrepareAsync(snapshotter, key, parent, labels, cancellationToken).ConfigureAwait(false);
        var committed = false;
        try
        {
            var applied = await client.Diff.ApplyAsync(layer, mounts, cancellationToken).ConfigureAwait(false);
            if (applied != diffId)
            {
                throw new ContainerdException("diff.apply " + layer.Digest, Grpc.Core.StatusCode.DataLoss,
                    $"layer unpacked to {applied}, but the image config says its diff ID is {diffId}");
            }

            try
            {
                await client.Snapshots.CommitAsync(snapshotter, chainId, key, labels, cancellationToken).ConfigureAwait(false);
                committed = true;
            }
            catch (ContainerdException ex) when (ex.Code == Grpc.Core.StatusCode.AlreadyExists)
            {
                // Another import committed the same chain meanwhile; ours is redundant.
            }
        }
        finally
        {
            if (!committed)
            {
                using var cleanup = new CancellationTokenSource(client.Options.CallTimeout, client.Options.TimeProvider);
                await client.Snapshots.RemoveAsync(snapshotter, key, cleanup.Token).ConfigureAwait(false);
            }
        }

        // Set only after the apply proved the uncompressed digest, as containerd does.
        await client.Content.UpdateLabelsAsync(
            layer.Digest,
            new Dictionary<string, string> { [ContainerdLabels.Uncompressed] = diffId.ToString() },
            cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<Digest>> ReadDiffIdsAsync(Descriptor config, CancellationToken cancellationToken)
    {
        if (config.Size > MaxConfigSize)
        {
            throw new ManifestFormatException($"image config {config.Digest} is {config.Size} bytes, more than the {MaxConfigSize} accepted");
        }

        using var buffer = new MemoryStream((int)config.Size);
        await using (var content = client.Content.Open(config.Digest, cancellationToken))
        {
            await content.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            using var json = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
            if (!json.RootElement.TryGetProperty("rootfs", out var rootfs) || !rootfs.TryGetProperty("diff_ids", out var ids)
                || ids.ValueKind != JsonValueKind.Array)
            {
                throw new ManifestFormatException($"image config {config.Digest} has no rootfs.diff_ids");
            }

            return ids.EnumerateArray().Select(id => Digest.Parse(id.GetString() ?? string.Empty)).ToList();
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
        {
            throw new ManifestFormatException($"image config {config.Digest} is not a valid image config: {ex.Message}", ex);
        }
    }
}
