using System.Collections;
using Airlock.Node;

namespace Airlock.Tests.Node;

public sealed class ContainerdProxyEnvironmentTests
{
    private static readonly ClusterNetworks Networks = new()
    {
        ClusterCidrs = ["10.42.0.0/16", "fd00:42::/56"],
        ServiceCidrs = ["10.43.0.0/16"],
        NodeNames = ["node-1", "node-2"],
    };

    [Fact]
    public void Proxy_variables_pass_through_and_no_proxy_gets_the_cluster_addresses_appended()
    {
        var env = new Hashtable { ["HTTP_PROXY"] = "http://proxy:3128", ["HTTPS_PROXY"] = "http://proxy:3128", ["NO_PROXY"] = "localhost,127.0.0.0/8, .corp" };

        var result = ContainerdProxyEnvironment.Render(ContainerdProxyEnvironment.Build(env, Networks));

        Assert.Equal(
            "HTTP_PROXY=http://proxy:3128\nHTTPS_PROXY=http://proxy:3128\n" +
            "NO_PROXY=localhost,127.0.0.0/8,.corp,.svc,.cluster.local,10.42.0.0/16,fd00:42::/56,10.43.0.0/16,node-1,node-2\n",
            result);
    }

    [Fact]
    public void Containerd_prefixed_variables_win_for_containerd()
    {
        var env = new Hashtable
        {
            ["HTTP_PROXY"] = "http://node-proxy:3128",
            ["CONTAINERD_HTTP_PROXY"] = "http://pull-proxy:8080",
            ["CONTAINERD_https_proxy"] = "http://pull-proxy:8443",
            ["NO_PROXY"] = "node.local",
            ["CONTAINERD_NO_PROXY"] = "registry.internal",
        };

        var result = ContainerdProxyEnvironment.Build(env, new ClusterNetworks { ClusterDomain = "example.internal" });

        Assert.Equal(
            [
                new("HTTP_PROXY", "http://pull-proxy:8080"),
                new("HTTPS_PROXY", "http://pull-proxy:8443"),
                new("NO_PROXY", "registry.internal,.svc,.example.internal"),
            ],
            result);
    }

    [Fact]
    public void Lower_case_variables_are_read_and_duplicates_are_not_repeated()
    {
        var env = new Hashtable { ["https_proxy"] = "http://p:1", ["no_proxy"] = ".svc,10.43.0.0/16" };

        var result = ContainerdProxyEnvironment.Build(env, Networks);

        Assert.Equal("http://p:1", result.Single(v => v.Key == "HTTPS_PROXY").Value);
        Assert.Equal(".svc,10.43.0.0/16,.cluster.local,10.42.0.0/16,fd00:42::/56,node-1,node-2", result.Single(v => v.Key == "NO_PROXY").Value);
    }

    [Fact]
    public void Without_a_proxy_nothing_is_written()
    {
        Assert.Empty(ContainerdProxyEnvironment.Build(new Hashtable { ["NO_PROXY"] = "x" }, Networks));
    }

    [Fact]
    public void Values_with_spaces_or_quotes_are_quoted_for_systemd()
    {
        Assert.Equal("HTTP_PROXY=\"http://u:p a\\\"ss@proxy:3128\"\n", ContainerdProxyEnvironment.Render([new("HTTP_PROXY", "http://u:p a\"ss@proxy:3128")]));
    }
}
