using Airlock.Node.Containerd;
using Airlock.Oci;

namespace Airlock.Cluster.Peers;

/// <summary>
/// What this node's containerd content store holds that peers may be given: committed blobs carrying containerd's
/// distribution-source label (<c>containerd.io/distribution.source.&lt;host&gt;</c>, which containerd sets on what it pulls
/// and the images directory sets on what it imports), read with the content service's List every scan. A node so shares
/// what containerd pulled before <c>--embedded-registry</c>, what it imported from archives, and what the p2p store no
/// longer keeps once containerd has it (<see cref="PeerMirror"/> sweeps such copies).
/// </summary>
/// <remarks>
/// The label names a host, not a registry (containerd drops the port), and says nothing about the credentials the pull
/// used (a pod's image pull secret, not registries.yaml): <see cref="PeerMirror"/> therefore serves a blob from here only
/// under a registry whose label it carries and only once this node fetched it from that registry itself or the registry
/// confirmed, with this node's registries.yaml credentials, that this node may read it.
/// </remarks>
internal sealed class ContainerdHoldings : IAsyncDisposable
{
    private readonly ContainerdClient _client;
    private volatile IReadOnlyDictionary<Digest, string[]> _held = new Dictionary<Digest, string[]>();

    private ContainerdHoldings(ContainerdClient client) => _client = client;

    /// <summary>The blobs the last scan found with a distribution-source label.</summary>
    public IEnumerable<Digest> Digests => _held.Keys;

    /// <summary>containerd at <paramref name="socket"/>, content of <paramref name="namespace"/> (the CRI's <c>k8s.io</c>: what kubelet pulls).</summary>
    public static ContainerdHoldings Connect(string socket, string @namespace) =>
        new(ContainerdClient.Connect(socket, @namespace, new ContainerdClientOptions { CallTimeout = TimeSpan.FromSeconds(10) }));

    /// <summary>Lists the content store again; on failure (containerd not up yet, restarting) the last list stays.</summary>
    public async Task ScanAsync(CancellationToken cancellationToken)
    {
        var held = new Dictionary<Digest, string[]>();
        await foreach (var info in _client.Content.ListAsync([], cancellationToken).ConfigureAwait(false))
        {
            var sources = info.Labels.Keys.Where(k => k.StartsWith(ContainerdLabels.DistributionSourcePrefix, StringComparison.Ordinal)).ToArray();
            if (sources.Length > 0)
            {
                held[info.Digest] = sources;
            }
        }

        _held = held;
    }

    /// <summary>Whether the last scan saw <paramref name="digest"/> labelled as coming from <paramref name="registry"/>'s host.</summary>
    public bool Holds(Digest digest, string registry) =>
        _held.TryGetValue(digest, out var sources) && sources.Contains(ContainerdLabels.DistributionSourceKey(registry), StringComparer.Ordinal);

    /// <summary>The blob's size when containerd holds it now with <paramref name="registry"/>'s label (asked again: it may have collected it since the scan).</summary>
    public async Task<long?> SizeAsync(Digest digest, string registry, CancellationToken cancellationToken)
    {
        var info = await _client.Content.InfoAsync(digest, cancellationToken).ConfigureAwait(false);
        return info is not null && info.Labels.ContainsKey(ContainerdLabels.DistributionSourceKey(registry)) ? info.Size : null;
    }

    /// <summary>The blob as containerd streams it (content service Read).</summary>
    public Stream Open(Digest digest, CancellationToken cancellationToken) => _client.Content.Open(digest, cancellationToken);

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}
