using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Airlock.Oci;

namespace Airlock.Cluster.Peers;

/// <summary>
/// Rendezvous (highest-random-weight) hashing: every node ranks the same nodes for a digest in the same order, from its
/// own view of the membership, with no coordination — so when all nodes want a blob at once they all ask the same one
/// first, and the registry sends it about once. A node joining or leaving moves only the blobs it ranks first.
/// </summary>
public static class Rendezvous
{
    /// <summary><paramref name="nodes"/> ordered best first for <paramref name="digest"/> (ties by name, ordinal).</summary>
    public static IReadOnlyList<string> Order(Digest digest, IEnumerable<string> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var key = digest.ToString();
        return nodes.Distinct(StringComparer.Ordinal)
            .Select(node => (node, score: Score(key, node)))
            .OrderByDescending(x => x.score)
            .ThenBy(x => x.node, StringComparer.Ordinal)
            .Select(x => x.node)
            .ToList();
    }

    private static ulong Score(string digest, string node)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(digest + "\n" + node), hash);
        return BinaryPrimitives.ReadUInt64BigEndian(hash);
    }
}
