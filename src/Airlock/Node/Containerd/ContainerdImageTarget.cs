using System.Collections.Concurrent;
using Airlock.Content;
using Airlock.Oci;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Node.Containerd;

/// <summary>How images land in containerd.</summary>
public sealed record ContainerdImportOptions
{
    /// <summary>Labels of every image record written; K3s's and the CRI's pin by default.</summary>
    public IReadOnlyDictionary<string, string> ImageLabels { get; init; } = ContainerdLabels.Pinned;

    /// <summary>Unpack the host platform's image into <see cref="Snapshotter"/>, as <c>ctr images import</c> does.</summary>
    public bool Unpack { get; init; } = true;

    /// <summary>containerd's default (and the CRI's) is overlayfs; native works where overlay mounts do not.</summary>
    public string Snapshotter { get; init; } = "overlayfs";

    /// <summary>The platform unpacked from a multi-platform index.</summary>
    public Platform Platform { get; init; } = HostPlatform;

    /// <summary>The lease expires on its own after this, should the importing process die before deleting it.</summary>
    public TimeSpan LeaseExpiry { get; init; } = TimeSpan.FromHours(1);

    public ILogger Logger { get; init; } = NullLogger.Instance;

    public static Platform HostPlatform => Platform.Host;
}

/// <summary>
/// containerd's content store and image records as an <see cref="IImageTarget"/>: blobs streamed in
/// through Content.Write, manifests with containerd's GC reference labels, and on naming an image the
/// distribution-source labels (K3s), an unpack for the host platform and the pinned image record.
/// Everything is written inside one lease, deleted on dispose, so the garbage collector cannot take
/// content between its write and the image record that holds it.
/// </summary>
public sealed class ContainerdImageTarget : IImageTarget
{
    // Manifests and indexes are buffered by contract (IImageSource.ReadManifestAsync); same cap on read-back.
    private const int MaxManifestSize = 4 * 1024 * 1024;

    private readonly ContainerdClient _client;
    private readonly ContainerdImportOptions _options;
    private readonly ConcurrentDictionary<Digest, ManifestDocument> _manifests = new();
    private readonly SemaphoreSlim _leaseGate = new(1, 1);
    private volatile ContainerdLease? _lease;

    public ContainerdImageTarget(ContainerdClient client, ContainerdImportOptions? options = null)
    {
        _client = client;
        _options = options ?? new ContainerdImportOptions();
    }

    public async ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken) =>
        await _client.Content.InfoAsync(blob.Digest, cancellationToken).ConfigureAwait(false) is not null;

    public async ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken)
    {
        var leased = await LeasedAsync(cancellationToken).ConfigureAwait(false);
        await leased.Content.WriteAsync(IngestRef(blob), blob, content, labels: null, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken) => HasBlobAsync(manifest, cancellationToken);

    /// <summary>
    /// Stores a manifest or index with its GC reference labels. With a <paramref name="reference"/> it is the
    /// root of an image: its content gets distribution-source labels, the host platform is unpacked, and the
    /// pinned image record is created or repointed. The reference must be a full image reference
    /// (normalised like K3s, e.g. <c>busybox</c> → <c>docker.io/library/busybox:latest</c>): containerd names
    /// images by it, so a bare tag cannot stand alone here. Call it for the root even when
    /// <see cref="HasManifestAsync"/> says the content is there, or no record is made.
    /// </summary>
    public async ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken)
    {
        // Parse the name first: a bad reference must fail before anything is written.
        var name = reference is null ? null : ImageReference.Parse(reference);
        if (name is { Tag: null, Digest: null })
        {
            // As containerd and K3s name an untagged reference (docker's TagNameOnly).
            name = name with { Tag = "latest" };
        }

        Verify(manifest, content.Span);
        var document = ManifestDocument.Parse(content.Span, manifest.MediaType);
        var references = ContainerdLabels.ChildReferences(document);

        var leased = await LeasedAsync(cancellationToken).ConfigureAwait(false);
        using (var stream = new MemoryStream(content.ToArray(), writable: false))
        {
            var written = await leased.Content.WriteAsync(IngestRef(manifest), manifest, stream, references, cancellationToken).ConfigureAwait(false);
            if (!written && references.Count > 0)
            {
                // Present already (pulled or imported before): make sure it holds its children all the same.
                await leased.Content.UpdateLabelsAsync(manifest.Digest, references, cancellationToken).ConfigureAwait(false);
            }
        }

        _manifests[manifest.Digest] = document;
        if (name is not null)
        {
            await NameImageAsync(leased, manifest, document, name, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_lease is not null)
        {
            await _lease.DisposeAsync().ConfigureAwait(false);
            _lease = null;
        }

        _leaseGate.Dispose();
    }

    private async Task NameImageAsync(ContainerdClient leased, Descriptor root, ManifestDocument document, ImageReference name, CancellationToken cancellationToken)
    {
        await LabelSourceAsync(leased, root, name, new HashSet<Digest>(), cancellationToken).ConfigureAwait(false);

        if (_options.Unpack)
        {
            var (platformManifest, platformDocument) = await SelectPlatformAsync(root, document, cancellationToken).ConfigureAwait(false);
            if (platformDocument is null)
            {
                _options.Logger.LogWarning("{Image} has no image for {Platform}; stored without unpacking", name, _options.Platform);
            }
            else
            {
                var unpacker = new ImageUnpacker(leased, _options.Snapshotter, _options.Logger);
                await unpacker.UnpackAsync(platformDocument, cancellationToken).ConfigureAwait(false);
                _options.Logger.LogDebug("Unpacked {Manifest} of {Image} into {Snapshotter}", platformManifest!.Digest, name, _options.Snapshotter);
            }
        }

        await leased.Images.PutAsync(name.ToString(), root, _options.ImageLabels, cancellationToken).ConfigureAwait(false);
        _options.Logger.LogInformation("Imported {Image} as {Digest}", name, root.Digest);
    }

    // K3s rule: all content of an imported image says where it came from, so the CRI can cross-mount it
    // and pulls of the same image find it.
    private async Task LabelSourceAsync(ContainerdClient leased, Descriptor node, ImageReference name, HashSet<Digest> seen, CancellationToken cancellationToken)
    {
        if (!seen.Add(node.Digest))
        {
            return;
        }

        var info = await leased.Content.InfoAsync(node.Digest, cancellationToken).ConfigureAwait(false);
        if (info is null)
        {
            // Indexes may list platforms whose content was never brought across; containerd allows that.
            return;
        }

        info.Labels.TryGetValue(ContainerdLabels.DistributionSourceKey(name.Registry), out var existing);
        if (ContainerdLabels.DistributionSource(name.Registry, name.Repository, existing) is { } label && label.Value != existing)
        {
            await leased.Content.UpdateLabelsAsync(node.Digest, new Dictionary<string, string> { [label.Key] = label.Value }, cancellationToken).ConfigureAwait(false);
        }

        if (MediaTypes.IsManifest(node.MediaType) && await LoadManifestAsync(node, cancellationToken).ConfigureAwait(false) is { } document)
        {
            foreach (var child in document.Children)
            {
                await LabelSourceAsync(leased, child, name, seen, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<(Descriptor? Manifest, ManifestDocument? Document)> SelectPlatformAsync(Descriptor root, ManifestDocument document, CancellationToken cancellationToken)
    {
        if (!document.IsIndex)
        {
            return (root, document);
        }

        foreach (var child in document.Manifests.Where(m => _options.Platform.Matches(m.Platform)))
        {
            if (await LoadManifestAsync(child, cancellationToken).ConfigureAwait(false) is { } childDocument)
            {
                return childDocument.IsIndex
                    ? await SelectPlatformAsync(child, childDocument, cancellationToken).ConfigureAwait(false)
                    : (child, childDocument);
            }
        }

        return (null, null);
    }

    private async Task<ManifestDocument?> LoadManifestAsync(Descriptor manifest, CancellationToken cancellationToken)
    {
        if (_manifests.TryGetValue(manifest.Digest, out var cached))
        {
            return cached;
        }

        if (manifest.Size > MaxManifestSize || await _client.Content.InfoAsync(manifest.Digest, cancellationToken).ConfigureAwait(false) is null)
        {
            return null;
        }

        using var buffer = new MemoryStream((int)manifest.Size);
        await using (var content = new VerifyingStream(_client.Content.Open(manifest.Digest, cancellationToken), manifest.Digest, manifest.Size))
        {
            await content.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        var document = ManifestDocument.Parse(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), manifest.MediaType);
        _manifests[manifest.Digest] = document;
        return document;
    }

    private async Task<ContainerdClient> LeasedAsync(CancellationToken cancellationToken)
    {
        if (_lease is { } lease)
        {
            return lease.Client;
        }

        await _leaseGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _lease ??= await _client.Leases.CreateAsync(_options.LeaseExpiry, cancellationToken).ConfigureAwait(false);
            return _lease.Client;
        }
        finally
        {
            _leaseGate.Release();
        }
    }

    private static void Verify(Descriptor manifest, ReadOnlySpan<byte> content)
    {
        using var hash = manifest.Digest.CreateHash();
        hash.AppendData(content);
        var actual = Digest.FromHash(manifest.Digest.Algorithm, hash.GetHashAndReset());
        if (content.Length != manifest.Size)
        {
            throw new DigestMismatchException(manifest.Digest, actual, $"manifest is {content.Length} bytes, the descriptor says {manifest.Size}");
        }

        if (actual != manifest.Digest)
        {
            throw new DigestMismatchException(manifest.Digest, actual, null);
        }
    }

    // Deterministic per blob, so an ingest an interrupted import left behind is reused (truncated) by the next.
    private static string IngestRef(Descriptor blob) => "airlock-import-" + blob.Digest;
}
