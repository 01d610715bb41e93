namespace Airlock.Tests.Architecture;

/// <summary>
/// Handlers, the pull-through cache and garbage collection see the store contracts (<c>Airlock.Content</c>) only: the
/// filesystem store is named by the composition root alone, so another store (S3 + etcd) plugs in there and nowhere
/// else. (The CLI's <c>registry gc</c>, the other composition root, is its own assembly.)
/// </summary>
public sealed class StoreBoundaryTests
{
    private const string FileSystemStore = "Content/FileSystemStore";

    // The peer-to-peer mirror keeps a node's shared blobs in a filesystem store of its own (<data-dir>/agent/p2p) and opens it itself.
    private static readonly string[] CompositionRoots = ["Registry/RegistryServer.cs", "Cluster/Peers/PeerMirror.cs"];

    [Fact]
    public void Only_the_composition_root_names_the_filesystem_store()
    {
        var offenders = LayeringTests.Library.Value.Dependencies
            .Where(d => d.To == FileSystemStore && d.From != FileSystemStore)
            .Where(d => !CompositionRoots.Any(root => d.Where.StartsWith(root + ":", StringComparison.Ordinal)))
            .Select(d => $"{d.Where}: {d.What}")
            .ToList();

        Assert.True(offenders.Count == 0, string.Join(Environment.NewLine, offenders));
    }
}
