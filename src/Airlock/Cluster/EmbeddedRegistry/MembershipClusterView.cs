using Airlock.Cluster.Membership;
using Airlock.Registry.Api;

namespace Airlock.Cluster.EmbeddedRegistry;

/// <summary>
/// The console's cluster page for the registry <c>airlock server --embedded-registry</c> runs: the members as the
/// server knows them now (role, first address, last heartbeat, client certificate expiry). What a node holds is
/// advertised as blob digests, not image names, so the page lists no images per node; the peer hit ratio is the peer
/// mirror's to report and stays unknown here.
/// </summary>
internal sealed class MembershipClusterView(MembershipStore membership) : IClusterView
{
    public ValueTask<ClusterSnapshot> SnapshotAsync(CancellationToken cancellationToken)
    {
        var nodes = membership.List()
            .Select(node => new Registry.Api.ClusterNode(
                node.Name,
                node.Addresses.Count > 0 ? node.Addresses[0] : null,
                node.Role == NodeRole.Server ? "server" : "agent",
                node.LastSeen,
                node.CertificateExpires,
                []))
            .ToList();
        return ValueTask.FromResult(new ClusterSnapshot(nodes, PeerHitRatio: null));
    }
}
