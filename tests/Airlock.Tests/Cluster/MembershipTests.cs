using System.Net;
using Airlock.Cluster;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Supervisor;

namespace Airlock.Tests.Cluster;

/// <summary>A joined member over time: heartbeats, renewal without a restart, CA rotation, and a server that restarts or forgets it.</summary>
public sealed class MembershipTests
{
    [Fact]
    public async Task Heartbeats_keep_a_node_ready_and_carry_what_it_advertises()
    {
        await using var cluster = await TestCluster.StartAsync();
        var holds = "sha256:" + new string('1', 64);
        var receiving = "sha256:" + new string('2', 64);
        var member = await cluster.JoinAsync(cluster.MemberOptions("worker-1") with
        {
            Advertise = () => new NodeAdvertisement { PeerEndpoint = "192.0.2.10:5001", Holds = [holds], Receiving = [receiving] },
        });

        cluster.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(NodeStatus.Ready, cluster.Server.Membership.Find("worker-1")!.Status);
        cluster.Time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(NodeStatus.NotReady, cluster.Server.Membership.Find("worker-1")!.Status);

        await member.BeatAsync(CancellationToken.None);

        var node = Assert.Single(await member.ListNodesAsync(CancellationToken.None));
        Assert.Equal(NodeStatus.Ready, node.Status);
        Assert.Equal(cluster.Time.GetUtcNow(), node.LastSeen);
        Assert.Equal("192.0.2.10:5001", node.Advertises!.PeerEndpoint);
        Assert.Equal([holds], node.Advertises.Holds);
        Assert.Equal([receiving], node.Advertises.Receiving);
        Assert.Equal(10, member.Settings!.HeartbeatSeconds);
    }

    [Fact]
    public async Task A_member_renews_its_certificates_before_expiry_without_a_restart()
    {
        await using var cluster = await TestCluster.StartAsync();
        var member = await cluster.JoinAsync("worker-1");
        var first = member.Credentials;
        var changed = 0;
        member.CredentialsChanged += _ => changed++;

        cluster.Time.Advance(TimeSpan.FromDays(200)); // 165 days left: not yet
        await member.BeatAsync(CancellationToken.None);
        Assert.Same(first, member.Credentials);

        cluster.Time.Advance(TimeSpan.FromDays(50)); // 115 days left
        await member.BeatAsync(CancellationToken.None);

        var renewed = member.Credentials;
        Assert.NotSame(first, renewed);
        Assert.Equal(1, changed);
        Assert.True(renewed.NotAfter > cluster.Time.GetUtcNow().AddDays(364));
        Assert.NotEqual(first.ClientCertificate.GetPublicKey(), renewed.ClientCertificate.GetPublicKey());
        var agent = new AgentDirectory(cluster.MemberOptions("worker-1").DataDirectory);
        await Openssl.VerifyAsync(agent.ClientCa, agent.ClientCertificate, "sslclient", cluster.Time.GetUtcNow());
        Assert.Equal(renewed.NotAfter, cluster.Server.Membership.Find("worker-1")!.CertificateExpires);

        // The renewed identity is what the node presents from now on.
        await member.BeatAsync(CancellationToken.None);
        Assert.Equal(cluster.Time.GetUtcNow(), cluster.Server.Membership.Find("worker-1")!.LastSeen);
    }

    [Fact]
    public async Task A_member_keeps_working_across_a_CA_rotation_and_then_renews_under_the_new_CA()
    {
        await using var cluster = await TestCluster.StartAsync();
        var member = await cluster.JoinAsync("worker-1");
        var oldHash = member.Credentials.ServerCaHash;

        await cluster.RestartServerAsync(whileStopped: () =>
        {
            cluster.Time.Advance(TimeSpan.FromSeconds(5));
            CertificateRotation.RotateCa(new ServerPkiOptions { Directory = cluster.Directory, NodeName = "test-server", Time = cluster.Time }, path: null);
        });
        var newHash = cluster.Server.Pki.ServerCa.Hash;
        Assert.NotEqual(oldHash, newHash);

        // The first heartbeat goes out with the old certificates over TLS checked against the old CA (the server's chain
        // carries the cross-signed new CA); the server answers with the new hash, and the node renews at once.
        await member.BeatAsync(CancellationToken.None);

        Assert.Equal(newHash, member.Credentials.ServerCaHash);
        Assert.Equal(cluster.Server.Pki.ClientCa.Signer.Subject, member.Credentials.ClientCertificate.Issuer);
        await member.BeatAsync(CancellationToken.None);
        Assert.Equal(cluster.Time.GetUtcNow(), cluster.Server.Membership.Find("worker-1")!.LastSeen);
    }

    [Fact]
    public async Task A_member_comes_back_after_the_server_restarts_and_joins_again_when_forgotten()
    {
        await using var cluster = await TestCluster.StartAsync();
        var member = await cluster.JoinAsync("worker-1");
        var port = cluster.Address.Port;
        await cluster.Server.DisposeAsync();

        // Server down: the heartbeat fails quietly and the member keeps its identity.
        await member.BeatAsync(CancellationToken.None);
        var identity = member.Credentials;

        cluster.Time.Advance(TimeSpan.FromMinutes(5));
        await cluster.StartServerAsync(options => options with { Listen = new IPEndPoint(IPAddress.Loopback, port) });
        await member.BeatAsync(CancellationToken.None);
        Assert.Same(identity, member.Credentials);
        Assert.Equal(cluster.Time.GetUtcNow(), cluster.Server.Membership.Find("worker-1")!.LastSeen);

        // The server's record is gone (restored from an older backup): the node joins again by itself, same name.
        await cluster.RestartServerAsync(whileStopped: () => File.Delete(Path.Combine(cluster.Directory.Nodes, "worker-1.json")));
        Assert.Empty(cluster.Server.Membership.List());
        await member.BeatAsync(CancellationToken.None);

        Assert.NotSame(identity, member.Credentials);
        Assert.Equal("worker-1", Assert.Single(cluster.Server.Membership.List()).Name);
    }

    [Fact]
    public async Task An_unusable_identity_is_kept_aside_and_the_node_joins_again()
    {
        await using var cluster = await TestCluster.StartAsync();
        var options = cluster.MemberOptions("worker-1");
        (await cluster.JoinAsync(options)).Dispose();
        var agent = new AgentDirectory(options.DataDirectory);
        var truncated = File.ReadAllBytes(agent.ClientKey)[..40];
        File.WriteAllBytes(agent.ClientKey, truncated);

        var member = await cluster.JoinAsync(options);

        var aside = Assert.Single(Directory.EnumerateDirectories(agent.Root, "unusable-*"));
        Assert.Equal(truncated, File.ReadAllBytes(Path.Combine(aside, "client.key")));
        Assert.Equal("worker-1", member.NodeName);
        Assert.Single(cluster.Server.Membership.List());
    }

    [Fact]
    public async Task The_node_list_survives_a_restart_and_reads_the_same_from_disk()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.JoinAsync(cluster.MemberOptions("worker-1") with { Labels = ["example.com/zone=a"] });
        await cluster.JoinAsync("worker-2");

        await cluster.RestartServerAsync();
        var fromDisk = MembershipStore.Open(cluster.Directory, cluster.Time).List();

        Assert.Equal(["worker-1", "worker-2"], cluster.Server.Membership.List().Select(n => n.Name));
        Assert.Equal(["worker-1", "worker-2"], fromDisk.Select(n => n.Name));
        Assert.Equal("a", fromDisk[0].Labels["example.com/zone"]);
        Assert.All(Directory.EnumerateFiles(cluster.Directory.Nodes), f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
    }

    [Fact]
    public async Task A_corrupt_node_record_stops_the_server_instead_of_freeing_the_name()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.JoinAsync("worker-1");
        var port = cluster.Address.Port;
        await cluster.Server.DisposeAsync();
        var record = Path.Combine(cluster.Directory.Nodes, "worker-1.json");
        File.WriteAllText(record, "{ not json");

        var refused = await Assert.ThrowsAsync<InvalidDataException>(() => cluster.StartServerAsync(o => o with { Listen = new IPEndPoint(IPAddress.Loopback, port) }));

        Assert.Contains(record, refused.Message, StringComparison.Ordinal);
        Assert.Equal("{ not json", File.ReadAllText(record));
    }
}
