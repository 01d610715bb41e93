using System.Net;
using System.Security.Cryptography;
using Airlock.Cluster;
using Airlock.Cluster.Join;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Supervisor;
using Airlock.Cluster.Tokens;

namespace Airlock.Tests.Cluster;

/// <summary>Joining over real TLS on loopback: what a good token gets, and every refusal writing nothing.</summary>
public sealed class JoinTests
{
    [Fact]
    public async Task Join_with_the_server_token_issues_certificates_openssl_verifies_and_lists_the_node()
    {
        await using var cluster = await TestCluster.StartAsync();
        var member = await cluster.JoinAsync(cluster.MemberOptions("worker-1") with { Labels = ["example.com/rack=3", "kubernetes.io/hostname=worker-1"], Taints = ["gpu=yes:NoSchedule"] });

        var node = Assert.Single(cluster.Server.Membership.List());
        Assert.Equal("worker-1", node.Name);
        Assert.Equal(NodeRole.Agent, node.Role);
        Assert.Equal(NodeStatus.Ready, node.Status);
        Assert.Equal(["192.0.2.10"], node.Addresses);
        Assert.Equal("3", node.Labels["example.com/rack"]);
        Assert.Equal(["gpu=yes:NoSchedule"], node.Taints);

        var agent = new AgentDirectory(cluster.MemberOptions("worker-1").DataDirectory);
        foreach (var file in new[] { agent.ClientKey, agent.ClientCertificate, agent.ServingKey, agent.ServingCertificate, agent.ServerCa, agent.ClientCa, agent.NodePassword, agent.Membership })
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        Assert.Equal("O=system:nodes, CN=system:node:worker-1", member.Credentials.ClientCertificate.Subject);
        Assert.Equal("CN=worker-1", member.Credentials.ServingCertificate.Subject);
        var now = cluster.Time.GetUtcNow();
        await Openssl.VerifyAsync(agent.ClientCa, agent.ClientCertificate, "sslclient", now);
        await Openssl.VerifyAsync(agent.ServerCa, agent.ServingCertificate, "sslserver", now);
        await Openssl.VerifyAsync(agent.ServerCa, Path.Combine(cluster.Directory.Tls, "supervisor.crt"), "sslserver", now);
        Assert.Equal(File.ReadAllBytes(Path.Combine(cluster.Directory.Tls, "server-ca.crt")), File.ReadAllBytes(agent.ServerCa));

        // A member reads the node list with its client certificate; without one, it is refused.
        Assert.Equal("worker-1", Assert.Single(await member.ListNodesAsync(CancellationToken.None)).Name);
        using var anonymous = cluster.CreateClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(SupervisorPaths.Nodes)).StatusCode);
    }

    [Fact]
    public async Task Cacerts_serves_the_bundle_whose_hash_the_token_carries()
    {
        await using var cluster = await TestCluster.StartAsync();
        using var client = cluster.CreateClient();

        var bundle = await client.GetByteArrayAsync(SupervisorPaths.CaCerts);

        Assert.True(JoinToken.TryParse(cluster.Token, JoinTokenKind.Server, false, out var token, out _));
        Assert.Equal(JoinToken.HashCaBundle(bundle), token.CaHash);
        Assert.Equal(JoinTokenKind.Server, token.Kind);
    }

    [Fact]
    public async Task A_server_with_another_CA_never_gets_the_secret_and_the_join_stops_naming_both_hashes()
    {
        await using var genuine = await TestCluster.StartAsync();
        await using var impostor = await TestCluster.StartAsync();
        var options = genuine.MemberOptions("worker-1") with { Server = impostor.Address };

        var refused = await Assert.ThrowsAsync<ClusterJoinException>(() => genuine.JoinAsync(options));

        var expected = genuine.Server.Pki.ServerCa.Hash;
        var served = impostor.Server.Pki.ServerCa.Hash;
        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
        Assert.Contains(served, refused.Message, StringComparison.Ordinal);
        Assert.Contains("secret was not sent", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(impostor.Log.Lines, line => line.Contains(SupervisorPaths.Join, StringComparison.Ordinal));
        Assert.Empty(TestCluster.Snapshot(new AgentDirectory(options.DataDirectory).Root));
        Assert.Empty(impostor.Server.Membership.List());
    }

    [Fact]
    public async Task An_expired_bootstrap_token_is_refused_and_nothing_is_written()
    {
        await using var cluster = await TestCluster.StartAsync();
        var (info, secret) = await cluster.Server.Tokens.Bootstrap.CreateAsync(TimeSpan.FromHours(1), "short-lived", CancellationToken.None);
        var token = JoinToken.Create(cluster.Server.Pki.ServerCa.Hash, JoinTokenKind.Bootstrap, secret, info.Id).ToString();

        var early = await cluster.JoinAsync(cluster.MemberOptions("early", token));
        Assert.NotNull(early.Credentials);

        cluster.Time.Advance(TimeSpan.FromHours(2));
        var nodes = TestCluster.Snapshot(cluster.Directory.Nodes);
        var options = cluster.MemberOptions("late", token);
        var refused = await Assert.ThrowsAsync<ClusterJoinException>(() => cluster.JoinAsync(options));

        Assert.Contains($"bootstrap token {info.Id} expired", refused.Message, StringComparison.Ordinal);
        TestCluster.AssertUnchanged(nodes, cluster.Directory.Nodes);
        Assert.False(File.Exists(new AgentDirectory(options.DataDirectory).ClientCertificate));
        Assert.DoesNotContain(cluster.Server.Membership.List(), n => n.Name == "late");
    }

    [Fact]
    public async Task A_deleted_bootstrap_token_joins_no_more_and_its_secret_is_stored_only_hashed()
    {
        await using var cluster = await TestCluster.StartAsync();
        var (info, secret) = await cluster.Server.Tokens.Bootstrap.CreateAsync(null, null, CancellationToken.None);
        var token = JoinToken.Create(cluster.Server.Pki.ServerCa.Hash, JoinTokenKind.Bootstrap, secret, info.Id).ToString();

        Assert.DoesNotContain(secret, File.ReadAllText(Path.Combine(cluster.Directory.Root, BootstrapTokenStore.FileName)), StringComparison.Ordinal);
        Assert.Empty(await cluster.Server.Tokens.Bootstrap.DeleteAsync([info.Id], CancellationToken.None));

        var refused = await Assert.ThrowsAsync<ClusterJoinException>(() => cluster.JoinAsync(cluster.MemberOptions("worker-1", token)));
        Assert.Contains($"bootstrap token {info.Id} is not known", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_name_another_node_holds_is_refused_while_the_same_node_may_join_again()
    {
        await using var cluster = await TestCluster.StartAsync();
        var first = await cluster.JoinAsync("worker-1");
        var nodes = TestCluster.Snapshot(cluster.Directory.Nodes);

        var other = cluster.MemberOptions("worker-1") with { DataDirectory = Path.Combine(cluster.Root.Path, "nodes", "other-machine") };
        var refused = await Assert.ThrowsAsync<ClusterJoinException>(() => cluster.JoinAsync(other));

        Assert.Contains("node name worker-1 is already taken by another node", refused.Message, StringComparison.Ordinal);
        Assert.Contains("--with-node-id", refused.Message, StringComparison.Ordinal);
        TestCluster.AssertUnchanged(nodes, cluster.Directory.Nodes);
        Assert.False(File.Exists(new AgentDirectory(other.DataDirectory).ClientCertificate));

        // The same machine (it holds the node password) lost its certificates: it joins again under its name.
        var agent = new AgentDirectory(cluster.MemberOptions("worker-1").DataDirectory);
        File.Delete(agent.Membership);
        var again = await cluster.JoinAsync("worker-1");
        Assert.NotEqual(first.Credentials.ClientCertificate.SerialNumber, again.Credentials.ClientCertificate.SerialNumber);
        Assert.Single(cluster.Server.Membership.List());
    }

    [Fact]
    public async Task With_node_id_gives_machines_sharing_a_name_their_own_stable_names()
    {
        await using var cluster = await TestCluster.StartAsync();
        var a = await cluster.JoinAsync(cluster.MemberOptions("worker") with { WithNodeId = true, DataDirectory = Path.Combine(cluster.Root.Path, "a") });
        var b = await cluster.JoinAsync(cluster.MemberOptions("worker") with { WithNodeId = true, DataDirectory = Path.Combine(cluster.Root.Path, "b") });

        Assert.NotEqual(a.NodeName, b.NodeName);
        Assert.StartsWith("worker-", a.NodeName, StringComparison.Ordinal);
        a.Dispose();
        var restarted = await cluster.JoinAsync(cluster.MemberOptions("worker") with { WithNodeId = true, DataDirectory = Path.Combine(cluster.Root.Path, "a") });
        Assert.Equal(a.NodeName, restarted.NodeName);
        Assert.Equal(2, cluster.Server.Membership.List().Count);
    }

    [Theory]
    [InlineData("node-role.kubernetes.io/worker=true")]
    [InlineData("kubernetes.io/role=master")]
    [InlineData("team.k8s.io/owner=me")]
    public async Task A_label_in_a_restricted_namespace_is_refused_by_the_node_and_by_the_server(string label)
    {
        await using var cluster = await TestCluster.StartAsync();
        var options = cluster.MemberOptions("worker-1") with { Labels = [label] };

        var local = await Assert.ThrowsAsync<ClusterJoinException>(() => cluster.JoinAsync(options));
        Assert.Contains("restricted namespace", local.Message, StringComparison.Ordinal);
        Assert.Contains("KEP-279", local.Message, StringComparison.Ordinal);

        // A node that skips its own check meets the server's.
        var (key, value) = (label[..label.IndexOf('=', StringComparison.Ordinal)], label[(label.IndexOf('=', StringComparison.Ordinal) + 1)..]);
        using var client = cluster.CreateClient();
        var (status, body) = await SupervisorCalls.JoinAsync(client, "server", Secret(cluster), JoinRequestFor("worker-1") with { Labels = new() { [key] = value } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains($"label {key} is in a restricted namespace", body, StringComparison.Ordinal);
        Assert.Empty(cluster.Server.Membership.List());
        Assert.False(Directory.Exists(cluster.Directory.Nodes) && Directory.EnumerateFiles(cluster.Directory.Nodes).Any());
    }

    [Fact]
    public async Task An_agent_token_or_a_bootstrap_token_cannot_join_a_server()
    {
        var agentSecret = JoinToken.NewSecret();
        await using var cluster = await TestCluster.StartAsync(options => options with { AgentToken = agentSecret });
        var agentToken = File.ReadAllText(cluster.Directory.AgentToken).Trim();
        Assert.Contains("::node:", agentToken, StringComparison.Ordinal);

        var refused = await Assert.ThrowsAsync<ClusterJoinException>(() => cluster.JoinAsync(cluster.MemberOptions("server-2", agentToken) with { Role = NodeRole.Server }));
        Assert.Contains("an agent token (K10…::node:…) joins agents only", refused.Message, StringComparison.Ordinal);

        var (info, secret) = await cluster.Server.Tokens.Bootstrap.CreateAsync(null, null, CancellationToken.None);
        var bootstrap = JoinToken.Create(cluster.Server.Pki.ServerCa.Hash, JoinTokenKind.Bootstrap, secret, info.Id).ToString();
        refused = await Assert.ThrowsAsync<ClusterJoinException>(() => cluster.JoinAsync(cluster.MemberOptions("server-3", bootstrap) with { Role = NodeRole.Server }));
        Assert.Contains("joins agents only", refused.Message, StringComparison.Ordinal);
        Assert.Empty(cluster.Server.Membership.List());

        // The agent token joins agents; the server token joins a server.
        await cluster.JoinAsync(cluster.MemberOptions("agent-1", agentToken));
        await cluster.JoinAsync(cluster.MemberOptions("server-2") with { Role = NodeRole.Server });
        Assert.Equal([NodeRole.Agent, NodeRole.Server], cluster.Server.Membership.List().Select(n => n.Role));
    }

    [Fact]
    public async Task A_node_data_directory_owned_by_another_user_is_refused_before_anything_is_sent()
    {
        await using var cluster = await TestCluster.StartAsync();
        var options = cluster.MemberOptions("worker-1");
        Directory.CreateDirectory(options.DataDirectory);
        (await Tool.RunAsync("chown", ["65534", options.DataDirectory])).EnsureSuccess();

        var refused = await Assert.ThrowsAsync<UnauthorizedAccessException>(() => cluster.JoinAsync(options));

        Assert.Contains($"{options.DataDirectory} belongs to user id 65534", refused.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(options.DataDirectory));
        Assert.DoesNotContain(cluster.Log.Lines, line => line.Contains(SupervisorPaths.Join, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_wrong_secret_is_refused_without_saying_more()
    {
        await using var cluster = await TestCluster.StartAsync();
        var wrong = JoinToken.Create(cluster.Server.Pki.ServerCa.Hash, JoinTokenKind.Server, JoinToken.NewSecret()).ToString();

        var refused = await Assert.ThrowsAsync<ClusterJoinException>(() => cluster.JoinAsync(cluster.MemberOptions("worker-1", wrong)));

        Assert.Contains("the token's secret is not this server's", refused.Message, StringComparison.Ordinal);
        Assert.Empty(cluster.Server.Membership.List());
    }

    public static TheoryData<string, string> CsrAbuse => new()
    {
        { "client-cn", "asks for subject \"O=system:nodes, CN=system:node:other-node\"; this node may only have \"O=system:nodes, CN=system:node:worker-1\"" },
        { "client-masters", "asks for subject \"O=system:masters, CN=system:node:worker-1\"" },
        { "serving-san", "asks for the name \"registry.example.com\"" },
        { "serving-ip", "asks for the address 198.51.100.7" },
        { "client-usage", "asks for extended key usage" },
        { "serving-ca", "asks to be a CA" },
        { "garbage", "is not a signed PKCS#10 CSR" },
    };

    [Theory]
    [MemberData(nameof(CsrAbuse))]
    public async Task A_certificate_request_asking_for_a_name_SAN_or_usage_the_node_may_not_have_is_refused(string abuse, string expected)
    {
        await using var cluster = await TestCluster.StartAsync();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var addresses = new[] { IPAddress.Parse("192.0.2.10") };
        var client = NodeCertificates.CreateRequest(key, "worker-1", serving: false, addresses);
        var serving = NodeCertificates.CreateRequest(key, "worker-1", serving: true, addresses);
        switch (abuse)
        {
            case "client-cn":
                client = NodeCertificates.CreateRequest(key, "other-node", serving: false, addresses);
                break;
            case "client-masters":
                client = Request(key, "O=system:masters, CN=system:node:worker-1", "1.3.6.1.5.5.7.3.2");
                break;
            case "serving-san":
                serving = Request(key, "CN=worker-1", "1.3.6.1.5.5.7.3.1", dns: "registry.example.com");
                break;
            case "serving-ip":
                serving = NodeCertificates.CreateRequest(key, "worker-1", serving: true, [IPAddress.Parse("198.51.100.7")]);
                break;
            case "client-usage":
                client = Request(key, "O=system:nodes, CN=system:node:worker-1", "1.3.6.1.5.5.7.3.1");
                break;
            case "serving-ca":
                serving = Request(key, "CN=worker-1", "1.3.6.1.5.5.7.3.1", ca: true);
                break;
            default:
                client = "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n";
                break;
        }

        using var http = cluster.CreateClient();
        var (status, body) = await SupervisorCalls.JoinAsync(http, "server", Secret(cluster),
            JoinRequestFor("worker-1") with { Certificates = new NodeCertificateRequests(client, serving) });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains(expected, System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Empty(cluster.Server.Membership.List());
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("{\"name\": \"worker-1\", \"password\": \"0123456789abcdef0123\", \"labels\": null, \"certificates\": {\"client\": \"x\", \"serving\": \"y\"}}")]
    [InlineData("{\"name\": \"worker-1\", \"password\": \"0123456789abcdef0123\"}")]
    public async Task A_malformed_join_request_is_a_clear_400_and_writes_nothing(string body)
    {
        await using var cluster = await TestCluster.StartAsync();
        using var client = cluster.CreateClient();
        using var message = new HttpRequestMessage(HttpMethod.Post, SupervisorPaths.Join) { Content = new StringContent(body) };
        message.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("server:" + Secret(cluster))));

        using var response = await client.SendAsync(message);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("the request body is not a valid JoinRequest", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Empty(cluster.Server.Membership.List());
    }

    [Theory]
    [InlineData("", "the token is empty")]
    [InlineData("secret-only", "is not in the form K10<CA hash>::<credential>")]
    [InlineData("K10abc::server:x", "is not 64 hexadecimal digits")]
    [InlineData("K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::admin:x", "user \"admin\" is neither")]
    [InlineData("K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::server:", "secret is empty")]
    [InlineData("K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::nocolon", "neither server:<secret>")]
    public void Malformed_tokens_are_refused_with_what_is_wrong(string text, string expected)
    {
        Assert.False(JoinToken.TryParse(text, JoinTokenKind.Node, allowBareSecret: false, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Tokens_round_trip_in_K3s_format()
    {
        var hash = new string('a', 64);
        Assert.True(JoinToken.TryParse($"K10{hash}::abcdef.0123456789abcdef", JoinTokenKind.Node, false, out var bootstrap, out _));
        Assert.Equal((JoinTokenKind.Bootstrap, "abcdef", "0123456789abcdef"), (bootstrap.Kind, bootstrap.Id, bootstrap.Secret));
        Assert.Equal($"K10{hash}::abcdef.0123456789abcdef", bootstrap.ToString());
        Assert.True(JoinToken.TryParse($"K10{hash.ToUpperInvariant()}::node:s3cret", JoinTokenKind.Node, false, out var node, out _));
        Assert.Equal($"K10{hash}::node:s3cret", node.ToString());
        Assert.True(JoinToken.TryParse("s3cret", JoinTokenKind.Server, allowBareSecret: true, out var bare, out _));
        Assert.Null(bare.CaHash);
    }

    private static string Secret(TestCluster cluster)
    {
        Assert.True(JoinToken.TryParse(cluster.Token, JoinTokenKind.Server, false, out var token, out _));
        return token.Secret;
    }

    private static JoinRequest JoinRequestFor(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var addresses = new[] { IPAddress.Parse("192.0.2.10") };
        return new JoinRequest
        {
            Name = name,
            Password = "0123456789abcdef0123",
            Addresses = ["192.0.2.10"],
            Certificates = new NodeCertificateRequests(
                NodeCertificates.CreateRequest(key, name, serving: false, addresses),
                NodeCertificates.CreateRequest(key, name, serving: true, addresses)),
        };
    }

    private static string Request(ECDsa key, string subject, string usage, string? dns = null, bool ca = false)
    {
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        if (dns is not null)
        {
            var names = new System.Security.Cryptography.X509Certificates.SubjectAlternativeNameBuilder();
            names.AddDnsName(dns);
            request.CertificateExtensions.Add(names.Build());
        }

        if (ca)
        {
            request.CertificateExtensions.Add(new System.Security.Cryptography.X509Certificates.X509BasicConstraintsExtension(true, false, 0, true));
        }

        return request.CreateSigningRequestPem();
    }
}
