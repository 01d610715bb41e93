namespace Airlock.Registry.Api;

/// <summary>
/// What the console's cluster page shows, supplied by whoever composes the registry with a cluster server
/// (the registry itself knows nothing of clusters). Without one (<see cref="RegistryServerOptions.Cluster"/>
/// null) <c>/api/v1/cluster</c> answers 404 and the console hides the page.
/// </summary>
public interface IClusterView
{
    ValueTask<ClusterSnapshot> SnapshotAsync(CancellationToken cancellationToken);
}

/// <summary>The cluster now: its nodes and how often nodes found a layer at a peer instead of the registry.</summary>
/// <param name="PeerHitRatio">Peer hits / (hits + misses) since the server started, 0..1; null when no peer mirror runs.</param>
public sealed record ClusterSnapshot(IReadOnlyList<ClusterNode> Nodes, double? PeerHitRatio);

/// <summary>A node: its name, address, role, when it was last heard of, its certificate's expiry and the images it holds.</summary>
public sealed record ClusterNode(
    string Name,
    string? Address,
    string? Role,
    DateTimeOffset? LastSeen,
    DateTimeOffset? CertificateNotAfter,
    IReadOnlyList<string> Images);
