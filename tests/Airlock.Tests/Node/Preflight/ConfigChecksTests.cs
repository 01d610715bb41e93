using System.Collections;
using System.Net;
using Airlock.Cli.Hosting;
using Airlock.Node.Preflight;

namespace Airlock.Tests.Node.Preflight;

public sealed class ConfigChecksTests
{
    private static List<CheckResult> Run(Dictionary<string, string[]> values, Dictionary<string, string>? env = null, IPAddress[]? addresses = null)
    {
        var host = new PreflightHost { Environment = env ?? new Dictionary<string, string>(), Addresses = addresses ?? [] };
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
    public void A_proxy_set_up_as_the_guide_says_passes_without_the_cluster_ranges_which_airlock_adds_itself()
    {
        // K3s's guide: NO_PROXY lists loopback and the private ranges the nodes use; pod and service ranges are added by K3s (and Airlock).
        var env = new Dictionary<string, string>
        {
            ["HTTP_PROXY"] = "http://your-proxy.example.com:8888",
            ["HTTPS_PROXY"] = "http://your-proxy.example.com:8888",
            ["NO_PROXY"] = "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16",
        };
        var result = Named(Run([], env, [IPAddress.Parse("192.168.10.5")]), "NO_PROXY");
        Assert.Equal(CheckStatus.Pass, result.Status);

        Assert.Contains("added to containerd's NO_PROXY by Airlock", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Node_addresses_the_proxy_would_get_are_named_with_the_entry_that_covers_them()
    {
        var env = new Dictionary<string, string> { ["HTTPS_PROXY"] = "http://proxy:3128", ["NO_PROXY"] = "127.0.0.0/8,.cluster.local,10.1.2.3" };
        var results = Run(new() { ["node-external-ip"] = ["203.0.113.7"] }, env, [IPAddress.Parse("10.1.2.3"), IPAddress.Parse("192.168.10.5")]);

        var result = Named(results, "NO_PROXY");
        Assert.Equal(CheckStatus.Warn, result.Status);
        Assert.Contains("192.168.10.5", result.Message, StringComparison.Ordinal);
        Assert.Contains("203.0.113.7", result.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("10.1.2.3", result.Message, StringComparison.Ordinal);
        Assert.Contains("192.168.10.5/32", result.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void Containerd_proxy_variables_are_checked_separately()
    {
        var env = new Dictionary<string, string> { ["CONTAINERD_HTTP_PROXY"] = "http://proxy:3128", ["CONTAINERD_NO_PROXY"] = "127.0.0.0/8" };
        var results = Run([], env, [IPAddress.Parse("192.168.10.5")]);
        Assert.Equal(CheckStatus.Warn, Named(results, "CONTAINERD_NO_PROXY").Status);
        Assert.DoesNotContain(results, r => r.Name == "NO_PROXY");
    }

    [Fact]
    public void Overlapping_cluster_and_service_ranges_fail()
    {
        var result = Named(Run(new() { ["cluster-cidr"] = ["10.42.0.0/16"], ["service-cidr"] = ["10.42.128.0/17"] }), "cidr-overlap");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("cluster-cidr 10.42.0.0/16 overlaps service-cidr 10.42.128.0/17", result.Message, StringComparison.Ordinal);
        Assert.Equal(CheckStatus.Pass, Named(Run([]), "cidr-overlap").Status);
    }

    [Fact]
    public void A_bad_cidr_is_reported_once_cleanly_without_a_garbled_dual_stack_message()
    {
        var results = Run(new() { ["cluster-cidr"] = ["10.42.0.0/33"] });
        var result = Named(results, "cluster-cidr");
        Assert.Equal(CheckStatus.Fail, result.Status);
        Assert.Contains("\"10.42.0.0/33\" is not a CIDR", result.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(results, r => r.Name == "dual-stack");
        Assert.DoesNotContain(results, r => r.Message.Contains("is  but", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("example.com/tier=edge", true)]
    [InlineData("tier=", true)]
    [InlineData("tier=edge node", false)]
    [InlineData("tier=-edge", false)]
    [InlineData("Example.COM/tier=edge", false)]
    [InlineData("tier", false)]
    [InlineData("a-very-long-value=0123456789012345678901234567890123456789012345678901234567890123", false)]
    public void Label_syntax_is_kubernetes_s(string label, bool valid)
    {
        var result = Run(new() { ["node-label"] = [label] }).First(r => r.Name == "node-label");
        Assert.Equal(valid ? CheckStatus.Pass : CheckStatus.Fail, result.Status);
    }

    [Fact]
    public void Wireguard_native_needs_the_wireguard_module_loaded_built_in_or_installed()
    {
        var root = Directory.CreateTempSubdirectory("airlock-check-root-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "proc"));
            Directory.CreateDirectory(Path.Combine(root, "lib/modules/6.1.0-test"));
            File.WriteAllText(Path.Combine(root, "proc/modules"), "overlay 151552 0 - Live 0x0\n");
            File.WriteAllText(Path.Combine(root, "lib/modules/6.1.0-test/modules.dep"), "kernel/fs/overlayfs/overlay.ko.xz:\n");
            var host = new PreflightHost { Root = root, KernelRelease = "6.1.0-test", Environment = new Dictionary<string, string>(), Addresses = [] };
            var settings = ClusterSettings.From("config.yaml", new Dictionary<string, string[]> { ["flannel-backend"] = ["wireguard-native"] });

            var missing = new ConfigCheck(settings).Run(host).Single(r => r.Name == "module-wireguard");
            Assert.Equal(CheckStatus.Fail, missing.Status);
            Assert.Contains("6.1.0-test", missing.Message, StringComparison.Ordinal);

            File.AppendAllText(Path.Combine(root, "lib/modules/6.1.0-test/modules.dep"), "kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/lib/crypto/libchacha.ko.xz\n");
            Assert.Equal(CheckStatus.Pass, new ConfigCheck(settings).Run(host).Single(r => r.Name == "module-wireguard").Status);
            Assert.DoesNotContain(new ConfigCheck(ClusterSettings.Empty).Run(host), r => r.Name == "module-wireguard");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Misspelt_config_keys_fail_with_the_key_they_resemble_and_unknown_ones_warn()
    {
        var config = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(config, "cluster-cdir: 10.50.0.0/16\nflanel-backend: vxlan\nnode-label+:\n  - a=b\nregistries: /etc/airlock/registries.yaml\nmy-own-tool-setting: 1\n");
            var output = new StringWriter();
            var code = await AirlockCli.RunAsync(["check", "--config", config, "--output", "json"], new Hashtable(), output, new StringWriter());

            Assert.Equal(1, code);
            var keys = System.Text.Json.JsonDocument.Parse(output.ToString()).RootElement.EnumerateArray()
                .Where(e => e.GetProperty("name").GetString() == "config-keys")
                .Select(e => (e.GetProperty("status").GetString(), e.GetProperty("message").GetString()!)).ToList();
            Assert.Contains(keys, k => k.Item1 == "fail" && k.Item2 == $"{config}:1: unknown key \"cluster-cdir\"; did you mean \"cluster-cidr\"?");
            Assert.Contains(keys, k => k.Item1 == "fail" && k.Item2.Contains("did you mean \"flannel-backend\"?", StringComparison.Ordinal));
            Assert.Contains(keys, k => k.Item1 == "warn" && k.Item2.Contains("\"my-own-tool-setting\"", StringComparison.Ordinal));
            Assert.Equal(3, keys.Count);
        }
        finally
        {
            File.Delete(config);
        }
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
