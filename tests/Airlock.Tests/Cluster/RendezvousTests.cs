using Airlock.Cluster.Peers;
using Airlock.Oci;

namespace Airlock.Tests.Cluster;

/// <summary>Every node ranks the same nodes the same way for a digest, and the first choices spread over the nodes.</summary>
public sealed class RendezvousTests
{
    private static readonly string[] Nodes = ["node-a", "node-b", "node-c", "node-d"];

    [Fact]
    public void The_order_depends_on_the_digest_and_the_names_only_not_on_the_order_they_are_given_in()
    {
        var digest = Digest.Sha256("layer"u8);

        var forward = Rendezvous.Order(digest, Nodes);
        var backward = Rendezvous.Order(digest, Nodes.Reverse());

        Assert.Equal(forward, backward);
        Assert.Equal(Nodes.Order(), forward.Order());
    }

    [Fact]
    public void A_node_leaving_moves_only_the_digests_it_ranked_first()
    {
        var digests = Enumerable.Range(0, 200).Select(i => Digest.Sha256(BitConverter.GetBytes(i))).ToList();
        var before = digests.ToDictionary(d => d, d => Rendezvous.Order(d, Nodes)[0]);

        var after = digests.ToDictionary(d => d, d => Rendezvous.Order(d, Nodes.Where(n => n != "node-c"))[0]);

        Assert.All(digests.Where(d => before[d] != "node-c"), d => Assert.Equal(before[d], after[d]));
    }

    [Fact]
    public void First_choices_spread_over_every_node()
    {
        var firsts = Enumerable.Range(0, 400).Select(i => Rendezvous.Order(Digest.Sha256(BitConverter.GetBytes(i)), Nodes)[0])
            .GroupBy(n => n).ToDictionary(g => g.Key, g => g.Count());

        Assert.Equal(Nodes.Length, firsts.Count);
        Assert.All(firsts.Values, count => Assert.InRange(count, 60, 140));
    }
}
