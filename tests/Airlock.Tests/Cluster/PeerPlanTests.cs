using Airlock.Cluster.Membership;
using Airlock.Cluster.Peers;
using Airlock.Oci;

namespace Airlock.Tests.Cluster;

/// <summary>Which peers a node asks for a blob, and that nodes asking one another never wait in a circle.</summary>
public sealed class PeerPlanTests
{
    private static readonly string[] Nodes = ["node-0", "node-1", "node-2", "node-3"];

    private static Dictionary<string, NodeAdvertisement> Others(string self, Func<string, NodeAdvertisement> advertisement) =>
        Nodes.Where(n => n != self).ToDictionary(n => n, advertisement, StringComparer.Ordinal);

    [Fact]
    public void When_every_node_is_receiving_a_blob_at_once_the_first_ranked_asks_no_peer_and_no_two_nodes_wait_on_each_other()
    {
        // The moment after a deploy: each node has started a transfer of the same blob and advertises it as receiving.
        foreach (var digest in Enumerable.Range(0, 100).Select(i => Digest.Sha256(BitConverter.GetBytes(i))))
        {
            var receiving = new NodeAdvertisement { PeerEndpoint = "x:5001", Receiving = [digest.ToString()] };
            var asks = Nodes.ToDictionary(n => n, n => PeerMirror.PeersToAsk(digest, n, Others(n, _ => receiving), max: 3));
            var first = Rendezvous.Order(digest, Nodes)[0];

            Assert.Empty(asks[first]);
            Assert.All(Nodes.Where(n => n != first), n => Assert.Equal(first, asks[n][0]));
            foreach (var (node, peers) in asks)
            {
                // Every wait goes up the ranking, so following waits from any node ends at the first-ranked one.
                var rank = Rendezvous.Order(digest, Nodes).ToList();
                Assert.All(peers, peer => Assert.True(rank.IndexOf(peer) < rank.IndexOf(node), $"{node} waits on {peer}, ranked below it, for {digest}"));
            }
        }
    }

    [Fact]
    public void A_peer_that_holds_the_blob_is_asked_first_wherever_it_ranks()
    {
        var digest = Digest.Sha256("layer"u8);
        var rank = Rendezvous.Order(digest, Nodes);
        var (top, last) = (rank[0], rank[^1]);
        var holds = new NodeAdvertisement { PeerEndpoint = "x:5001", Holds = [digest.ToString()] };
        var idle = new NodeAdvertisement { PeerEndpoint = "x:5001" };

        // Even the node ranked first reads from a complete copy rather than fetch from the registry.
        Assert.Equal([last], PeerMirror.PeersToAsk(digest, top, Others(top, n => n == last ? holds : idle), max: 3));
        Assert.Equal([last, top], PeerMirror.PeersToAsk(digest, rank[1], Others(rank[1], n => n == last ? holds : idle), max: 3));
    }

    [Fact]
    public void A_node_with_no_live_peers_asks_none()
    {
        Assert.Empty(PeerMirror.PeersToAsk(Digest.Sha256("layer"u8), "node-0", new Dictionary<string, NodeAdvertisement>(), max: 3));
    }
}
