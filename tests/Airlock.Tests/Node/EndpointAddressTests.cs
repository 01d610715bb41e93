using Airlock.GoCompat;
using Airlock.Node;

namespace Airlock.Tests.Node;

/// <summary>K3s's normalizeEndpointAddress, rule by rule (k3s-semantics.md, "Endpoint URL normalisation").</summary>
public sealed class EndpointAddressTests
{
    [Theory]
    [InlineData("registry.example.com", "https://registry.example.com/v2")]
    [InlineData("registry.example.com:5000", "https://registry.example.com:5000/v2")]
    [InlineData("registry.example.com:80", "https://registry.example.com:80/v2")]
    [InlineData("localhost", "https://localhost/v2")]
    [InlineData("localhost:443", "https://localhost:443/v2")]
    [InlineData("localhost:5000", "http://localhost:5000/v2")]
    [InlineData("127.0.0.1:5000", "http://127.0.0.1:5000/v2")]
    [InlineData("127.1.2.3:5000", "http://127.1.2.3:5000/v2")]
    [InlineData("[::1]:5000", "http://[::1]:5000/v2")]
    [InlineData("127.1:5000", "https://127.1:5000/v2")]
    [InlineData("10.0.0.1:5000", "https://10.0.0.1:5000/v2")]
    [InlineData("https://127.0.0.1:5000", "https://127.0.0.1:5000/v2")]
    [InlineData("http://registry.example.com", "http://registry.example.com/v2")]
    [InlineData("HTTPS://Registry.Example.com", "https://Registry.Example.com/v2")]
    public void Scheme_defaults_to_https_except_loopback_hosts_on_odd_ports(string input, string expected)
    {
        Assert.True(EndpointAddress.TryNormalize(input, out var address, out _));
        Assert.Equal(expected, address!.Url);
    }

    [Theory]
    [InlineData("https://registry.example.com", "https://registry.example.com/v2", false)]
    [InlineData("https://registry.example.com/", "https://registry.example.com/v2", false)]
    [InlineData("https://registry.example.com/v2", "https://registry.example.com/v2", false)]
    [InlineData("https://registry.example.com/v2/", "https://registry.example.com/v2/", true)]
    [InlineData("https://registry.example.com/prefix/v2", "https://registry.example.com/prefix/v2", true)]
    [InlineData("registry.example.com/some/path", "https://registry.example.com/some/path", true)]
    [InlineData("https://registry.example.com/v2?ns=docker.io", "https://registry.example.com/v2?ns=docker.io", false)]
    public void Path_empty_slash_or_v2_becomes_v2_and_any_other_path_is_kept_with_override_path(string input, string expected, bool overridePath)
    {
        Assert.True(EndpointAddress.TryNormalize(input, out var address, out _));
        Assert.Equal(expected, address!.Url);
        Assert.Equal(overridePath, address.OverridePath);
    }

    [Theory]
    [InlineData("docker.io", "https://registry-1.docker.io/v2", "docker.io")]
    [InlineData("registry-1.docker.io", "https://registry-1.docker.io/v2", "docker.io")]
    [InlineData("index.docker.io", "https://index.docker.io/v2", "index.docker.io")]
    [InlineData("docker.io:443", "https://docker.io:443/v2", "docker.io:443")]
    [InlineData("registry.example.com:5000", "https://registry.example.com:5000/v2", "registry.example.com:5000")]
    public void Docker_io_maps_to_registry_1_and_the_registry_name_maps_back(string input, string url, string registryName)
    {
        Assert.True(EndpointAddress.TryNormalize(input, out var address, out _));
        Assert.Equal(url, address!.Url);
        Assert.Equal(registryName, address.RegistryName);
    }

    [Theory]
    [InlineData("https://registry.example.com:port", "invalid port")]
    [InlineData("registry.example.com:50x0", "invalid port")]
    [InlineData("https://[::1", "missing ']'")]
    [InlineData("://registry.example.com", "missing protocol scheme")]
    [InlineData("https://registry.example.com/%zz", "invalid URL escape")]
    [InlineData("https://reg istry.example.com", "invalid character")]
    [InlineData("https://registry.example.com/\u0001", "control character")]
    public void Addresses_Go_cannot_parse_are_rejected_with_its_reason(string input, string reason)
    {
        Assert.False(EndpointAddress.TryNormalize(input, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/etc/ssl/ca.pem", "\"/etc/ssl/ca.pem\"")]
    [InlineData("a\"b\\c", "\"a\\\"b\\\\c\"")]
    [InlineData("tab\there\u0001", "\"tab\\there\\x01\"")]
    [InlineData("p\u00e4ss\u00a0w\u2028", "\"p\u00e4ss\\u00a0w\\u2028\"")]
    public void Go_quoting_matches_strconv_Quote(string value, string expected)
    {
        Assert.Equal(expected, GoQuote.Quote(value));
    }
}
