using Airlock.Oci;

namespace Airlock.Node.Containerd;

/// <summary>
/// The labels containerd 1.6 itself puts on content, images and snapshots, with the same names and the
/// same numbering (images/mediatypes.go ChildGCLabels, images/handlers.go SetChildrenMappedLabels,
/// remotes/docker/handler.go, unpacker.go), so its garbage collector and tools treat imported images
/// exactly like pulled ones.
/// </summary>
public static class ContainerdLabels
{
    /// <summary>K3s's pin: kubelet image GC never removes an image with it.</summary>
    public const string K3sPinned = "io.cattle.k3s.pinned";

    /// <summary>The CRI plugin's own pin label.</summary>
    public const string CriPinned = "io.cri-containerd.pinned";

    public const string PinnedValue = "pinned";

    /// <summary>
    /// On image records the images directory created: the file (absolute path) the image came from, so the agent can
    /// remove images whose archive was taken away (K3s's upgrade replaces the tarball; the old images would stay pinned).
    /// </summary>
    public const string ImagesFile = "io.airlock.images-file";

    internal const string DistributionSourcePrefix = "containerd.io/distribution.source.";
    internal const string Uncompressed = "containerd.io/uncompressed";
    internal const string SnapshotRef = "containerd.io/snapshot.ref";
    internal const string GcSnapshotPrefix = "containerd.io/gc.ref.snapshot.";

    private const string GcConfig = "containerd.io/gc.ref.content.config";
    private const string GcManifestPrefix = "containerd.io/gc.ref.content.m.";
    private const string GcLayerPrefix = "containerd.io/gc.ref.content.l.";
    private const string GcContentPrefix = "containerd.io/gc.ref.content.";

    // containerd refuses labels whose key and value together exceed 4096 bytes.
    private const int MaxLabelLength = 4096;

    /// <summary>The labels an imported image record carries: pinned for K3s and for the CRI.</summary>
    public static IReadOnlyDictionary<string, string> Pinned { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [K3sPinned] = PinnedValue,
        [CriPinned] = PinnedValue,
    };

    /// <summary>
    /// The GC reference labels of a manifest or index: one per child, keyed by the child's kind and
    /// numbered per kind, so the collector keeps children as long as the parent is kept.
    /// </summary>
    internal static Dictionary<string, string> ChildReferences(ManifestDocument document)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var counters = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var child in document.Children)
        {
            var key = ChildKey(child.MediaType);
            counters.TryGetValue(key, out var index);
            counters[key] = index + 1;
            if (index > 0 || key.EndsWith('.'))
            {
                key += index.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            labels[key] = child.Digest.ToString();
        }

        return labels;
    }

    /// <summary>
    /// The <c>containerd.io/distribution.source.&lt;registry&gt;</c> label with <paramref name="repository"/>
    /// merged into <paramref name="existing"/> (a sorted, comma-separated, duplicate-free list, as containerd
    /// keeps it); null when the result would exceed containerd's label size limit, which containerd skips too.
    /// </summary>
    internal static KeyValuePair<string, string>? DistributionSource(string registry, string repository, string? existing)
    {
        var key = DistributionSourceKey(registry);
        var repositories = new SortedSet<string>(StringComparer.Ordinal) { repository };
        if (!string.IsNullOrEmpty(existing))
        {
            repositories.UnionWith(existing.Split(',', StringSplitOptions.RemoveEmptyEntries));
        }

        var value = string.Join(',', repositories);
        return key.Length + value.Length > MaxLabelLength ? null : new(key, value);
    }

    /// <summary>
    /// The label key for a registry: containerd keys it by host name only (url.Hostname(): no port, no IPv6
    /// brackets), so <c>localhost:5000</c> and <c>localhost</c> share one label.
    /// </summary>
    internal static string DistributionSourceKey(string registry)
    {
        var host = registry;
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']', StringComparison.Ordinal);
            host = close > 0 ? host[1..close] : host;
        }
        else if (host.LastIndexOf(':') is var colon and > 0)
        {
            host = host[..colon];
        }

        return DistributionSourcePrefix + host;
    }

    private static string ChildKey(string mediaType) => mediaType switch
    {
        MediaTypes.OciConfig or MediaTypes.DockerConfig
            or "application/vnd.containerd.container.criu.checkpoint.criu.tar"
            or "application/vnd.containerd.container.checkpoint.config.v1+proto" => GcConfig,
        MediaTypes.OciManifest or MediaTypes.DockerManifest => GcManifestPrefix,
        _ when IsLayer(mediaType) => GcLayerPrefix,
        _ => GcContentPrefix,
    };

    private static bool IsLayer(string mediaType)
    {
        if (mediaType.StartsWith("application/vnd.oci.image.layer.", StringComparison.Ordinal))
        {
            return true;
        }

        var plus = mediaType.IndexOf('+', StringComparison.Ordinal);
        var baseType = plus >= 0 ? mediaType[..plus] : mediaType;
        return baseType is "application/vnd.docker.image.rootfs.diff.tar" or MediaTypes.DockerLayerGzip
            or "application/vnd.docker.image.rootfs.foreign.diff.tar" or MediaTypes.DockerForeignLayerGzip;
    }
}
