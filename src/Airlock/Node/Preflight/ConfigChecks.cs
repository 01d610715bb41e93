using System.Net;
using System.Net.Sockets;

namespace Airlock.Node.Preflight;

/// <summary>
/// Cluster settings that K3s refuses only at start, or accepts and then fails on: flannel backend, egress
/// selector mode, CIDRs and dual-stack pairs, restricted node labels, and proxy exclusions.
/// </summary>
internal sealed class ConfigCheck(ClusterSettings settings) : IPreflightCheck
{
    private const string MigrationAdvice =
        "set `flannel-backend: wireguard-native` in config.yaml on every server and restart the servers one at a time, then the agents; "
        + "the legacy `wireguard` backend was removed in K3s v1.26 and `ipsec` in v1.27";

    private static readonly string[] FlannelBackends = ["vxlan", "host-gw", "wireguard-native", "none"];
    private static readonly string[] EgressModes = ["disabled", "agent", "pod", "cluster"];

    // Labels a kubelet may set on its own node inside the kubernetes.io / k8s.io namespaces (KEP-279).
    private static readonly string[] AllowedKubernetesLabels =
    [
        "kubernetes.io/hostname", "kubernetes.io/instance-type", "kubernetes.io/os", "kubernetes.io/arch",
        "beta.kubernetes.io/instance-type", "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
        "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
        "failure-domain.kubernetes.io/zone", "failure-domain.kubernetes.io/region",
        "topology.kubernetes.io/zone", "topology.kubernetes.io/region", "node.kubernetes.io/instance-type",
    ];

    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        var results = new List<CheckResult>();
        CheckFlannel(results);
        CheckEgress(results);
        var cluster = CheckCidrs(results, "cluster-cidr", "10.42.0.0/16", maxV4Prefix: null, maxV6Prefix: null);
        var service = CheckCidrs(results, "service-cidr", "10.43.0.0/16", maxV4Prefix: 12, maxV6Prefix: 112);
        CheckDualStack(results, cluster, service);
        CheckNodeLabels(results);
        CheckProxy(results, host, cluster.Concat(service).ToArray());
        return results;
    }

    private void CheckFlannel(List<CheckResult> results)
    {
        var setting = settings["flannel-backend"];
        var backend = setting?.Scalar ?? "vxlan";
        const string name = "flannel-backend";
        if (backend is "ipsec" or "wireguard")
        {
            results.Add(CheckResult.Fail(name, $"{setting!.Location}: flannel backend \"{backend}\" has been removed", MigrationAdvice));
        }
        else if (!FlannelBackends.Contains(backend, StringComparer.Ordinal))
        {
            results.Add(CheckResult.Fail(name, $"{setting!.Location}: unknown flannel backend \"{backend}\"; valid: {string.Join(", ", FlannelBackends)}"));
        }
        else
        {
            results.Add(CheckResult.Pass(name, backend));
        }
    }

    private void CheckEgress(List<CheckResult> results)
    {
        var setting = settings["egress-selector-mode"];
        var mode = setting?.Scalar ?? "agent";
        results.Add(EgressModes.Contains(mode, StringComparer.Ordinal)
            ? CheckResult.Pass("egress-selector-mode", mode)
            : CheckResult.Fail("egress-selector-mode", $"{setting!.Location}: unknown egress selector mode \"{mode}\"; valid: {string.Join(", ", EgressModes)}"));
    }

    private IReadOnlyList<IPNetwork> CheckCidrs(List<CheckResult> results, string key, string fallback, int? maxV4Prefix, int? maxV6Prefix)
    {
        var setting = settings[key];
        var items = setting?.Items.ToArray() ?? [fallback];
        var location = setting?.Location ?? "default";
        var networks = new List<IPNetwork>();
        var problems = new List<string>();
        foreach (var item in items)
        {
            if (!IPNetwork.TryParse(item, out var network))
            {
                problems.Add($"\"{item}\" is not a CIDR (address/prefix with the host bits zero)");
                continue;
            }

            var limit = network.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? maxV4Prefix : maxV6Prefix;
            if (limit is { } max && network.PrefixLength < max)
            {
                problems.Add($"{item} is larger than /{max}, the largest service range Kubernetes accepts for {(max == 12 ? "IPv4" : "IPv6")}");
            }

            networks.Add(network);
        }

        foreach (var family in networks.GroupBy(n => n.BaseAddress.AddressFamily).Where(g => g.Count() > 1))
        {
            problems.Add($"more than one {(family.Key == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} range; dual-stack takes at most one of each family");
        }

        results.Add(problems.Count == 0
            ? CheckResult.Pass(key, string.Join(",", items))
            : CheckResult.Fail(key, $"{location}: {string.Join("; ", problems)}"));
        return networks;
    }

    private void CheckDualStack(List<CheckResult> results, IReadOnlyList<IPNetwork> cluster, IReadOnlyList<IPNetwork> service)
    {
        static string Families(IEnumerable<IPNetwork> networks) =>
            string.Join("+", networks.Select(n => n.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? "IPv4" : "IPv6"));

        var clusterFamilies = Families(cluster);
        var serviceFamilies = Families(service);
        results.Add(string.Equals(clusterFamilies, serviceFamilies, StringComparison.Ordinal)
            ? CheckResult.Pass("dual-stack", $"cluster and service ranges are both {clusterFamilies}")
            : CheckResult.Fail("dual-stack", $"cluster-cidr is {clusterFamilies} but service-cidr is {serviceFamilies}; both must list the same families in the same order",
                "give both flags one IPv4 and one IPv6 range, e.g. cluster-cidr: 10.42.0.0/16,2001:cafe:42::/56 and service-cidr: 10.43.0.0/16,2001:cafe:43::/112"));
    }

    private void CheckNodeLabels(List<CheckResult> results)
    {
        var setting = settings["node-label"];
        if (setting is null)
        {
            return;
        }

        var refused = new List<string>();
        foreach (var label in setting.Values)
        {
            var key = label.Split('=')[0];
            var slash = key.IndexOf('/', StringComparison.Ordinal);
            var prefix = slash < 0 ? string.Empty : key[..slash];
            var restrictedNamespace = prefix == "kubernetes.io" || prefix == "k8s.io"
                || prefix.EndsWith(".kubernetes.io", StringComparison.Ordinal) || prefix.EndsWith(".k8s.io", StringComparison.Ordinal);
            var allowedException = AllowedKubernetesLabels.Contains(key, StringComparer.Ordinal)
                || prefix.EndsWith("kubelet.kubernetes.io", StringComparison.Ordinal) || prefix.EndsWith("node.kubernetes.io", StringComparison.Ordinal);
            if (restrictedNamespace && !allowedException)
            {
                refused.Add(key);
            }
        }

        results.Add(refused.Count == 0
            ? CheckResult.Pass("node-label", $"{setting.Values.Count} label(s) allowed")
            : CheckResult.Fail("node-label", $"{setting.Location}: the node may not set {string.Join(", ", refused)} on itself (NodeRestriction, KEP-279)",
                "set such labels after registration with kubectl label node <name> node-role.kubernetes.io/worker=true, or use your own prefix (e.g. example.com/role=worker)"));
    }

    private static void CheckProxy(List<CheckResult> results, PreflightHost host, IReadOnlyList<IPNetwork> ranges)
    {
        string? Env(string name) =>
            host.Environment.TryGetValue(name, out var v) && v.Length > 0 ? v
            : host.Environment.TryGetValue(name.ToLowerInvariant(), out v) && v.Length > 0 ? v : null;

        foreach (var prefix in new[] { string.Empty, "CONTAINERD_" })
        {
            var proxy = Env(prefix + "HTTPS_PROXY") ?? Env(prefix + "HTTP_PROXY");
            if (proxy is null)
            {
                continue;
            }

            var noProxy = (Env(prefix + "NO_PROXY") ?? string.Empty)
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var excluded = noProxy.Select(e => IPNetwork.TryParse(e, out var n) ? n : (IPNetwork?)null).OfType<IPNetwork>().ToArray();
            var uncovered = ranges.Where(r => !excluded.Any(e => Covers(e, r))).Select(r => r.ToString()).ToArray();
            var name = $"{prefix}NO_PROXY";
            results.Add(uncovered.Length == 0
                ? CheckResult.Pass(name, "cluster and service ranges bypass the proxy")
                : CheckResult.Fail(name, $"{prefix}HTTP(S)_PROXY is set but {name} does not cover {string.Join(", ", uncovered)}: pod and service traffic would go to the proxy",
                    $"add them to {name} in the service's environment file, e.g. {name}=127.0.0.0/8,{string.Join(",", uncovered)}"));
        }
    }

    private static bool Covers(IPNetwork outer, IPNetwork inner) =>
        outer.BaseAddress.AddressFamily == inner.BaseAddress.AddressFamily
        && outer.PrefixLength <= inner.PrefixLength
        && outer.Contains(inner.BaseAddress);
}
