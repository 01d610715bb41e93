using System.Collections;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Airlock.Cli.Hosting;
using Airlock.Cluster;
using Airlock.Cluster.Tokens;

namespace Airlock.Tests.Cluster;

/// <summary>The cluster verbs as the CLI parses and prints them: server, agent --server, token, node, certificate.</summary>
public sealed class ClusterCommandTests
{
    [Theory]
    [InlineData(new[] { "server", "--token", "K10abc::server:x" }, "--token: the token's CA hash \"abc\" is not 64 hexadecimal digits")]
    [InlineData(new[] { "server", "--token", "a", "--token-file", "/etc/passwd" }, "--token and --token-file exclude each other")]
    [InlineData(new[] { "server", "--agent-token", "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::server:x" }, "--agent-token is a server token")]
    [InlineData(new[] { "server", "--tls-san", "not a name" }, "--tls-san \"not a name\" is neither a host name nor an IP address")]
    [InlineData(new[] { "server", "--cert-renew-within", "9000h" }, "--cert-renew-within must be longer than 0 and shorter than")]
    [InlineData(new[] { "agent", "--token", "K10x" }, "give --server too")]
    [InlineData(new[] { "agent", "--server", "https://server:9443" }, "--server needs the join token")]
    [InlineData(new[] { "agent", "--server", "https://server:9443", "--token", "secret" }, "is not in the form K10<CA hash>::<credential>")]
    [InlineData(new[] { "agent", "--server", "http://server:9443", "--token", "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::node:x" }, "must be https://HOST:PORT")]
    [InlineData(new[] { "agent", "--server", "https://server:9443", "--token", "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::node:x", "--node-label", "node-role.kubernetes.io/master=" }, "restricted namespace")]
    [InlineData(new[] { "agent", "--server", "https://server:9443", "--token", "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::node:x", "--node-taint", "gpu=yes:Sometimes" }, "taint \"gpu=yes:Sometimes\" is not key[=value]:effect")]
    [InlineData(new[] { "agent", "--server", "https://server:9443", "--token", "K10aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa::node:x", "--node-ip", "ten.0.0.1" }, "--node-ip \"ten.0.0.1\" is not an IP address")]
    [InlineData(new[] { "certificate", "rotate", "--service", "supervisor,kubelet" }, "--service kubelet: not a service")]
    public async Task Bad_flags_are_usage_errors_naming_the_problem(string[] args, string expected)
    {
        using var data = new TempDirectory();
        var (code, output) = await RunAsync([.. args, "--data-dir", data.Path]);

        Assert.Equal(AirlockCli.ExitUsage, code);
        Assert.Contains(expected, output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(data.Path, "server")), "nothing is created for a refused command");
    }

    [Fact]
    public async Task Token_create_list_and_delete_on_the_server()
    {
        await using var cluster = await TestCluster.StartAsync();
        var data = cluster.DataDirectory;

        var (code, output) = await RunAsync("token", "create", "--data-dir", data, "--ttl", "2h", "--description", "rack 3");
        Assert.Equal(0, code);
        Assert.True(JoinToken.TryParse(output.Trim(), JoinTokenKind.Node, false, out var token, out var error), error);
        Assert.Equal(JoinTokenKind.Bootstrap, token.Kind);
        Assert.Equal(cluster.Server.Pki.ServerCa.Hash, token.CaHash);

        (code, output) = await RunAsync("token", "list", "--data-dir", data, "--output", "json");
        Assert.Equal(0, code);
        using (var json = JsonDocument.Parse(output))
        {
            var row = Assert.Single(json.RootElement.EnumerateArray());
            Assert.Equal(token.Id, row.GetProperty("id").GetString());
            Assert.Equal("rack 3", row.GetProperty("description").GetString());
            Assert.DoesNotContain(token.Secret, output, StringComparison.Ordinal);
        }

        // The running server takes the new token without a restart.
        await cluster.JoinAsync(cluster.MemberOptions("worker-1", token.ToString()));

        (code, _) = await RunAsync("token", "delete", "--data-dir", data, token.Id);
        Assert.Equal(0, code);
        (code, output) = await RunAsync("token", "delete", "--data-dir", data, token.Id);
        Assert.Equal(AirlockCli.ExitError, code);
        Assert.Contains($"no bootstrap token {token.Id}", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Token_create_without_a_server_says_where_to_start_one()
    {
        using var data = new TempDirectory();
        var (code, output) = await RunAsync("token", "create", "--data-dir", data.Path);

        Assert.Equal(AirlockCli.ExitError, code);
        Assert.Contains("start `airlock server", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Node_list_prints_the_members_as_a_table_and_as_json()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.JoinAsync(cluster.MemberOptions("worker-1") with { Labels = ["example.com/rack=3"] });

        var (code, output) = await RunAsync("node", "list", "--data-dir", cluster.DataDirectory);
        Assert.Equal(0, code);
        Assert.Matches(@"NAME\s+STATUS\s+ROLE\s+ADDRESSES", output);
        Assert.Matches(@"worker-1\s+(Ready|NotReady)\s+agent\s+192\.0\.2\.10\s+test", output);
        Assert.Contains("example.com/rack=3", output, StringComparison.Ordinal);

        (code, output) = await RunAsync("node", "list", "--data-dir", cluster.DataDirectory, "--output", "yaml");
        Assert.Equal(0, code);
        Assert.Contains("name: worker-1", output, StringComparison.Ordinal);
        Assert.Contains("role: agent", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Certificate_check_lists_every_certificate_and_fails_on_an_expired_one()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.JoinAsync(cluster.MemberOptions("worker-1") with { DataDirectory = cluster.DataDirectory });

        var (code, output) = await RunAsync("certificate", "check", "--data-dir", cluster.DataDirectory, "--output", "json");
        Assert.Equal(0, code);
        using (var json = JsonDocument.Parse(output))
        {
            var files = json.RootElement.EnumerateArray().Select(e => Path.GetFileName(e.GetProperty("file").GetString()!)).Distinct().ToList();
            Assert.Contains("supervisor.crt", files);
            Assert.Contains("client-admin.crt", files);
            Assert.Contains("client.crt", files);
            Assert.Contains("serving.crt", files);
            var supervisor = json.RootElement.EnumerateArray().First(e => e.GetProperty("file").GetString()!.EndsWith("supervisor.crt", StringComparison.Ordinal));
            Assert.Contains("server", supervisor.GetProperty("usages").EnumerateArray().Select(u => u.GetString()));
            Assert.Contains("127.0.0.1", supervisor.GetProperty("sans").EnumerateArray().Select(u => u.GetString()));
        }

        using (var key = ECDsa.Create())
        {
            var request = new CertificateRequest("CN=old", key, HashAlgorithmName.SHA256);
            using var expired = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(-1));
            File.WriteAllText(Path.Combine(new AgentDirectory(cluster.DataDirectory).Root, "old.crt"), expired.ExportCertificatePem());
        }

        (code, output) = await RunAsync("certificate", "check", "--data-dir", cluster.DataDirectory, "--output", "table");
        Assert.Equal(AirlockCli.ExitError, code);
        Assert.Matches(@"old\.crt\s+CN=old\s+\S*\s+\S+\s+-?\d+\s+EXPIRED", output);

        // The default text form says, per certificate, what the table has no room for: the issuer and the names.
        (code, output) = await RunAsync("certificate", "check", "--data-dir", cluster.DataDirectory);
        Assert.Equal(AirlockCli.ExitError, code);
        Assert.Matches(@"old\.crt: certificate CN=old issued by CN=old expired at \S+ \[EXPIRED\]", output);
        Assert.Matches(@"supervisor\.crt: certificate CN=\S+ issued by CN=[^\n]+ for [^\n]*127\.0\.0\.1[^\n]* is ok, expires at \S+ \(\d+ days left\) \[OK\]", output);
    }

    [Fact]
    public async Task Certificate_rotate_refuses_while_the_server_runs_and_rotates_once_it_is_stopped()
    {
        await using var cluster = await TestCluster.StartAsync();
        var before = TestCluster.Snapshot(cluster.Directory.Tls);

        var (code, output) = await RunAsync("certificate", "rotate", "--data-dir", cluster.DataDirectory);
        Assert.Equal(AirlockCli.ExitError, code);
        Assert.Contains("an airlock server is running from", output, StringComparison.Ordinal);
        TestCluster.AssertUnchanged(before, cluster.Directory.Tls);

        await cluster.Server.DisposeAsync();
        (code, output) = await RunAsync("certificate", "rotate", "--data-dir", cluster.DataDirectory, "--service", "registry");
        Assert.Equal(0, code);
        Assert.Contains("backed up to " + cluster.Directory.Root + "/tls-", output, StringComparison.Ordinal);
        Assert.Contains("reissued registry", output, StringComparison.Ordinal);

        (code, output) = await RunAsync("certificate", "rotate-ca", "--data-dir", cluster.DataDirectory);
        Assert.True(code == 0, output);
        var token = output.Trim().Split('\n')[^1];
        Assert.Equal(File.ReadAllText(cluster.Directory.Token).Trim(), token);
        Assert.Equal(JoinToken.HashCaBundle(File.ReadAllBytes(Path.Combine(cluster.Directory.Tls, "server-ca.crt"))), token[3..67]);
    }

    [Fact]
    public async Task Certificate_rotate_takes_the_servers_flags_from_config_yaml_and_AIRLOCK_variables()
    {
        await using var cluster = await TestCluster.StartAsync();
        await cluster.Server.DisposeAsync();
        using var etc = new TempDirectory();
        var config = Path.Combine(etc.Path, "config.yaml");
        // One config.yaml for the server and the certificate verbs, as K3s's: a reissued certificate keeps the server's names.
        File.WriteAllText(config, $"data-dir: {cluster.DataDirectory}\ntls-san:\n  - rack3.airgap.test\n  - 198.51.100.7\nembedded-registry: true\n");

        var (code, output) = await RunAsync(["certificate", "rotate"], new Hashtable { ["AIRLOCK_CONFIG"] = config, ["AIRLOCK_SERVICE"] = "supervisor" });

        Assert.True(code == 0, output);
        Assert.Contains("reissued supervisor", output, StringComparison.Ordinal);
        Assert.DoesNotContain("reissued registry", output, StringComparison.Ordinal);
        using var supervisor = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(cluster.Directory.Tls, "supervisor.crt")));
        var sans = supervisor.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Contains("rack3.airgap.test", sans.EnumerateDnsNames());
        Assert.Contains(System.Net.IPAddress.Parse("198.51.100.7"), sans.EnumerateIPAddresses());
    }

    private static Task<(int Code, string Output)> RunAsync(params string[] args) => RunAsync((IReadOnlyList<string>)args);

    private static Task<(int Code, string Output)> RunAsync(IReadOnlyList<string> args) =>
        RunAsync(args, new Hashtable { ["AIRLOCK_CONFIG"] = "/dev/null" });

    private static async Task<(int Code, string Output)> RunAsync(IReadOnlyList<string> args, Hashtable environment)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await AirlockCli.RunAsync([.. args], environment, output, error);
        return (code, output + error.ToString());
    }

    private sealed class TempDirectory : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("airlock-cli-cluster-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
