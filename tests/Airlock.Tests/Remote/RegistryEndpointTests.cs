using Airlock.Remote;

namespace Airlock.Tests.Remote;

public sealed class RegistryEndpointTests
{
    [Theory]
    [InlineData("localhost:5000", "http://localhost:5000/")]
    [InlineData("127.0.0.1:5000", "http://127.0.0.1:5000/")]
    [InlineData("127.1.2.3:8080", "http://127.1.2.3:8080/")]
    [InlineData("[::1]:5000", "http://[::1]:5000/")]
    [InlineData("localhost", "https://localhost/")]
    [InlineData("localhost:443", "https://localhost/")]
    [InlineData("127.0.0.1", "https://127.0.0.1/")]
    [InlineData("registry.example.com:5000", "https://registry.example.com:5000/")]
    [InlineData("10.0.0.1:5000", "https://10.0.0.1:5000/")]
    [InlineData("128.0.0.1:5000", "https://128.0.0.1:5000/")]
    [InlineData("docker.io", "https://registry-1.docker.io/")]
    [InlineData("quay.io", "https://quay.io/")]
    public void Loopback_hosts_with_a_port_other_than_443_use_plain_http_and_everything_else_https(string registry, string expected)
    {
        Assert.Equal(new Uri(expected), RegistryEndpoint.DefaultBaseAddress(registry));
    }

    [Fact]
    public void Docker_hub_credentials_are_looked_up_under_registry_1_then_docker_io()
    {
        Assert.Equal(["registry-1.docker.io", "docker.io"], RegistryEndpoint.CredentialHosts("docker.io"));
        Assert.Equal(["quay.io"], RegistryEndpoint.CredentialHosts("quay.io"));
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
