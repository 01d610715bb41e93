using Airlock.Node.Preflight;

namespace Airlock.Tests.Node.Preflight;

public sealed class ConfigChecksTests
{
    private static List<CheckResult> Run(Dictionary<string, string[]> values, Dictionary<string, string>? env = null)
    {
        var host = new PreflightHost { Environment = env ?? new Dictionary<string, string>() };
        return new ConfigCheck(ClusterSettings.From("config.yaml", values)).Run(host).ToList();
    }

    private static CheckResult Named(List<CheckResult> results, string name) => results.Single(r => r.Name == name);

    [Fact]
    public void Defaults_pass()
    {
        Assert.All(Run([]), r => Assert.Equal(CheckStatus.Pass, r.Status));
    }

    [Theory]
    [InlineData("ipsec")]
    [InlineData("wireguard")]
    public void Removed_flannel_backends_are_refused_with_migration_advice(string backend)
    {
        var result = Named(Run(new() { ["flannel-backend"] = [backend] }), "flannel-backend");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("removed", result.Message, StringComparison.Ordinal);
        Assert.Contains("wireguard-native", result.Fix, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("vxlan", CheckStatus.Pass)]
    [InlineData("host-gw", CheckStatus.Pass)]
    [InlineData("wireguard-native", CheckStatus.Pass)]
    [InlineData("none", CheckStatus.Pass)]
    [InlineData("udp", CheckStatus.Fail)]
    public void Flannel_backend_must_be_one_of_the_supported(string backend, CheckStatus expected)
    {
        Assert.Equal(expected, Named(Run(new() { ["flannel-backend"] = [backend] }), "flannel-backend").Status);
    }

    [Theory]
    [InlineData("disabled", CheckStatus.Pass)]
    [InlineData("agent", CheckStatus.Pass)]
    [InlineData("pod", CheckStatus.Pass)]
    [InlineData("cluster", CheckStatus.Pass)]
    [InlineData("proxy", CheckStatus.Fail)]
    public void Egress_selector_mode_must_be_known(string mode, CheckStatus expected)
    {
        Assert.Equal(expected, Named(Run(new() { ["egress-selector-mode"] = [mode] }), "egress-selector-mode").Status);
    }

    [Theory]
    [InlineData("10.43.0.0/12", CheckStatus.Pass)]
    [InlineData("10.32.0.0/11", CheckStatus.Fail)]
    [InlineData("2001:cafe:43::/112", CheckStatus.Pass)]
    [InlineData("2001:cafe:43::/108", CheckStatus.Fail)]
    [InlineData("10.43.0.0/33", CheckStatus.Fail)]
    [InlineData("not-a-cidr", CheckStatus.Fail)]
    public void Service_cidr_is_parsed_and_no_larger_than_slash12_or_slash112(string cidr, CheckStatus expected)
    {
        var cluster = cidr.Contains(':', StringComparison.Ordinal) ? "2001:cafe:42::/56" : "10.42.0.0/16";
        var result = Named(Run(new() { ["service-cidr"] = [cidr], ["cluster-cidr"] = [cluster] }), "service-cidr");
        Assert.Equal(expected, result.Status);
    }

    [Fact]
    public void Dual_stack_needs_the_same_families_on_both_ranges()
    {
        var mismatched = Run(new() { ["cluster-cidr"] = ["10.42.0.0/16,2001:cafe:42::/56"], ["service-cidr"] = ["10.43.0.0/16"] });
        Assert.Equal(CheckStatus.Fail, Named(mismatched, "dual-stack").Status);

        var matched = Run(new() { ["cluster-cidr"] = ["10.42.0.0/16,2001:cafe:42::/56"], ["service-cidr"] = ["10.43.0.0/16,2001:cafe:43::/112"] });
        Assert.All(matched, r => Assert.Equal(CheckStatus.Pass, r.Status));
    }

    [Fact]
    public void Two_ranges_of_one_family_are_refused()
    {
        var result = Named(Run(new() { ["cluster-cidr"] = ["10.42.0.0/16,10.44.0.0/16"] }), "cluster-cidr");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("more than one IPv4", result.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("node-role.kubernetes.io/worker=true", CheckStatus.Fail)]
    [InlineData("kubernetes.io/foo=bar", CheckStatus.Fail)]
    [InlineData("topology.kubernetes.io/zone=a", CheckStatus.Pass)]
    [InlineData("example.com/role=worker", CheckStatus.Pass)]
    [InlineData("foo.node.kubernetes.io/x=y", CheckStatus.Pass)]
    public void Node_labels_in_restricted_namespaces_are_refused(string label, CheckStatus expected)
    {
        var result = Named(Run(new() { ["node-label"] = [label] }), "node-label");
        Assert.Equal(expected, result.Status);
        if (expected == CheckStatus.Fail)
        {
            Assert.Contains("KEP-279", result.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_proxy_without_the_cluster_ranges_in_no_proxy_fails()
    {
        var env = new Dictionary<string, string> { ["HTTPS_PROXY"] = "http://proxy:3128", ["NO_PROXY"] = "127.0.0.0/8,10.42.0.0/16" };
        var result = Named(Run([], env), "NO_PROXY");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("10.43.0.0/16", result.Message, StringComparison.Ordinal);

        env["NO_PROXY"] = "127.0.0.0/8,10.0.0.0/8";
        Assert.Equal(CheckStatus.Pass, Named(Run([], env), "NO_PROXY").Status);
    }

    [Fact]
    public void Containerd_proxy_variables_are_checked_separately()
    {
        var env = new Dictionary<string, string> { ["CONTAINERD_HTTP_PROXY"] = "http://proxy:3128", ["CONTAINERD_NO_PROXY"] = "127.0.0.0/8" };
        var results = Run([], env);
        Assert.Equal(CheckStatus.Fail, Named(results, "CONTAINERD_NO_PROXY").Status);
        Assert.DoesNotContain(results, r => r.Name == "NO_PROXY");
    }

    [Fact]
    public void Settings_file_values_keep_their_line_for_messages()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "write-kubeconfig-mode: \"0644\"\nflannel-backend: ipsec\nnode-label:\n  - a=b\n");
            var settings = ClusterSettings.Load(path);
            var result = new ConfigCheck(settings).Run(new PreflightHost()).Single(r => r.Name == "flannel-backend");
            Assert.StartsWith($"{path}:2:", result.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Bad_yaml_is_reported_with_file_and_line()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "flannel-backend: [vxlan\n");
            var ex = Assert.Throws<InvalidDataException>(() => ClusterSettings.Load(path));
            Assert.StartsWith(path + ":", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
