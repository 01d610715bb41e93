using Airlock.Cluster.Peers;
using Airlock.Oci;
using Airlock.Tests.Bundles;

namespace Airlock.Tests.Cluster;

/// <summary>
/// Where each blob of the p2p store came from survives a restart (peers are served the blobs a node already holds at
/// once), and a crash or a vanished blob never makes a node serve a blob under a registry it did not come from.
/// </summary>
public sealed class BlobOriginsTests
{
    private static readonly Digest Public = Digest.Sha256("public layer"u8);
    private static readonly Digest Private = Digest.Sha256("private layer"u8);

    [Fact]
    public void Origins_recorded_before_a_restart_are_known_after_it()
    {
        using var store = new TempDirectory();
        using (var origins = BlobOrigins.Open(store.Path, _ => true))
        {
            origins.Add(Public, "docker.io");
            origins.Add(Private, "registry.corp.example");
        }

        using var reopened = BlobOrigins.Open(store.Path, _ => true);

        Assert.True(reopened.Contains(Public, "docker.io"));
        Assert.True(reopened.Contains(Private, "registry.corp.example"));
        Assert.False(reopened.Contains(Private, "docker.io"));
    }

    [Fact]
    public void A_line_torn_by_a_crash_and_the_origin_of_a_blob_no_longer_stored_are_dropped_at_the_next_start()
    {
        using var store = new TempDirectory();
        using (var origins = BlobOrigins.Open(store.Path, _ => true))
        {
            origins.Add(Public, "docker.io");
            origins.Add(Private, "registry.corp.example");
        }

        // A crash in the middle of an append leaves half a line.
        File.AppendAllText(Path.Combine(store.Path, BlobOrigins.FileName), Digest.Sha256("torn"u8).ToString()[..20]);

        using (var reopened = BlobOrigins.Open(store.Path, d => d != Private))
        {
            Assert.True(reopened.Contains(Public, "docker.io"));
            Assert.False(reopened.Contains(Private, "registry.corp.example"));
            reopened.Add(Digest.Sha256("later"u8), "quay.io");
        }

        // The file was compacted: the torn line does not glue itself to the next record.
        var lines = File.ReadAllLines(Path.Combine(store.Path, BlobOrigins.FileName));
        Assert.Equal([$"{Public} docker.io", $"{Digest.Sha256("later"u8)} quay.io"], lines);
    }
}
