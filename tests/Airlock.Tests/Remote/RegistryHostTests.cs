using Airlock.Remote;
using Airlock.Tls;

namespace Airlock.Tests.Remote;

public sealed class RegistryHostTests
{
    [Theory]
    [InlineData("localhost:5000", "https://localhost:5000/ http://localhost:5000/")]
    [InlineData("127.0.0.1:5000", "https://127.0.0.1:5000/ http://127.0.0.1:5000/")]
    [InlineData("127.1.2.3:8080", "https://127.1.2.3:8080/ http://127.1.2.3:8080/")]
    [InlineData("[::1]:5000", "https://[::1]:5000/ http://[::1]:5000/")]
    [InlineData("localhost", "https://localhost/")]
    [InlineData("localhost:443", "https://localhost/")]
    [InlineData("127.0.0.1", "https://127.0.0.1/")]
    [InlineData("registry.example.com:5000", "https://registry.example.com:5000/")]
    [InlineData("10.0.0.1:5000", "https://10.0.0.1:5000/")]
    [InlineData("128.0.0.1:5000", "https://128.0.0.1:5000/")]
    [InlineData("docker.io", "https://registry-1.docker.io/")]
    [InlineData("index.docker.io", "https://registry-1.docker.io/")]
    [InlineData("quay.io", "https://quay.io/")]
    public void Loopback_hosts_on_a_port_other_than_443_try_HTTPS_then_plain_HTTP_and_everything_else_HTTPS_only(string registry, string expected)
    {
        var host = RegistryHosts.Resolve(new RemoteOptions(), registry);
        Assert.Equal(expected, string.Join(' ', host.BaseAddresses));
    }

    [Fact]
    public void A_loopback_registry_with_a_CA_or_client_certificate_is_HTTPS_only_and_insecure_adds_HTTP_to_any_HTTPS_address()
    {
        var options = RegistryHosts.Apply(new RemoteOptions(),
        [
            new RegistryHostSettings { Registry = "127.0.0.1:5000", Tls = new TlsSettings { CaFile = "/ca.crt" } },
            new RegistryHostSettings { Registry = "127.0.0.1:5001", Tls = new TlsSettings { InsecureSkipVerify = true } },
            new RegistryHostSettings { Registry = "mirror.lan", Endpoint = new Uri("https://10.0.0.9:8443/v2") },
        ]);

        Assert.Equal(["https://127.0.0.1:5000/"], RegistryHosts.Resolve(options, "127.0.0.1:5000").BaseAddresses.Select(u => u.ToString()));
        Assert.Equal(2, RegistryHosts.Resolve(options, "127.0.0.1:5001").BaseAddresses.Count);
        Assert.Equal(["https://10.0.0.9:8443/"], RegistryHosts.Resolve(options, "mirror.lan").BaseAddresses.Select(u => u.ToString()));
        Assert.Equal(["https://10.0.0.9:8443/", "http://10.0.0.9:8443/"],
            RegistryHosts.Resolve(options with { Insecure = true }, "mirror.lan").BaseAddresses.Select(u => u.ToString()));
        Assert.Equal(["https://quay.io/", "http://quay.io/"], RegistryHosts.Resolve(options with { Insecure = true }, "quay.io").BaseAddresses.Select(u => u.ToString()));
    }

    [Fact]
    public void Docker_hub_settings_are_found_under_any_of_its_names_registry_1_first()
    {
        Assert.Equal(["registry-1.docker.io", "docker.io", "index.docker.io"], RegistryHost.SettingKeys("docker.io"));
        Assert.Equal(["quay.io"], RegistryHost.SettingKeys("quay.io"));
        var options = new RemoteOptions
        {
            Credentials = new StaticCredentialSource(new Dictionary<string, RegistryCredential>
            {
                ["docker.io"] = new("from-docker-io", "p"),
                ["registry-1.docker.io"] = new("from-registry-1", "p"),
            }),
        };

        Assert.Equal("from-registry-1", RegistryHosts.Resolve(options, "docker.io").Credential?.Username);
        Assert.Equal("from-registry-1", RegistryHosts.Resolve(options, "index.docker.io").Credential?.Username);
        Assert.Equal("registry-1.docker.io", RegistryHosts.Resolve(options, "docker.io").ApiHost);
    }

    [Fact]
    public void Later_sources_win_per_registry_and_field_and_a_source_s_own_registry_entry_beats_its_every_registry_entry()
    {
        // registries.yaml, then --creds and --insecure, then a sync file: the documented order.
        var file = RegistryHosts.Apply(new RemoteOptions(),
        [
            new RegistryHostSettings { Registry = "a.lan", Credential = new("file-a", "p"), Tls = new TlsSettings { CaFile = "/a-ca.crt" } },
            new RegistryHostSettings { Registry = "b.lan", Credential = new("file-b", "p") },
        ]);
        var flags = RegistryHosts.Apply(file, [new RegistryHostSettings { Registry = RegistryHosts.EveryRegistry, Credential = new("flag", "p") }]);
        var job = RegistryHosts.Apply(flags,
        [
            new RegistryHostSettings { Registry = "a.lan", Credential = new("job-a", "p"), Tls = new TlsSettings { InsecureSkipVerify = true } },
            new RegistryHostSettings { Registry = "c.lan", Endpoint = new Uri("http://c.lan/") },
        ]);

        Assert.Equal("job-a", RegistryHosts.Resolve(job, "a.lan").Credential?.Username);
        Assert.Equal("flag", RegistryHosts.Resolve(job, "b.lan").Credential?.Username);
        Assert.Equal("flag", RegistryHosts.Resolve(job, "elsewhere.lan").Credential?.Username);
        Assert.Equal("file-b", RegistryHosts.Resolve(file, "b.lan").Credential?.Username);
        Assert.Null(RegistryHosts.Resolve(file, "elsewhere.lan").Credential);
        Assert.Equal(new TlsSettings { CaFile = "/a-ca.crt", InsecureSkipVerify = true }, RegistryHosts.Resolve(job, "a.lan").Tls);
        Assert.Equal(["http://c.lan/"], RegistryHosts.Resolve(job, "c.lan").BaseAddresses.Select(u => u.ToString()));
    }

    [Theory]
    [InlineData("localhost", true)]
    [InlineData("localhost:5000", true)]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.255.0.9:80", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("127.1", false)]
    [InlineData("0127.0.0.1", false)]
    [InlineData("[::1]", false)]
    [InlineData("localhost.example.com", false)]
    [InlineData("10.1.1.1:5000", false)]
    public void Loopback_follows_containerd_s_IsLocalhost(string host, bool expected)
    {
        Assert.Equal(expected, RegistryHost.IsLoopback(host));
    }

    [Fact]
    public void Credentials_parse_from_user_pass_and_from_base64_auth()
    {
        var fromFlag = RegistryCredential.ParseUserPass("alice:pa:ss");
        Assert.Equal(("alice", "pa:ss"), fromFlag.BasicPair);
        var fromAuth = new RegistryCredential(null, null, Auth: Convert.ToBase64String("bob:secret"u8.ToArray()));
        Assert.Equal(("bob", "secret"), fromAuth.BasicPair);
        Assert.Null(new RegistryCredential(null, null, Auth: "%%%").BasicPair);
        Assert.Throws<FormatException>(() => RegistryCredential.ParseUserPass("nocolon"));
        Assert.DoesNotContain("pa:ss", fromFlag.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_static_credential_table_is_matched_by_host_and_a_single_pair_applies_everywhere()
    {
        var table = new StaticCredentialSource(new Dictionary<string, RegistryCredential> { ["Registry.Example:5000"] = new("u", "p") });
        Assert.Equal("u", table.Find("registry.example:5000")?.Username);
        Assert.Null(table.Find("other"));
        var everywhere = StaticCredentialSource.FromUserPass("x:y");
        Assert.Equal("x", everywhere.Find("anything")?.Username);
    }
}
