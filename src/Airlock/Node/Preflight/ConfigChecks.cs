using System.Net;
using System.Net.Sockets;

namespace Airlock.Node.Preflight;

/// <summary>
/// Cluster settings that K3s refuses only at start, or accepts and then fails on: flannel backend (and the kernel
/// module wireguard-native needs), egress selector mode, CIDRs (their families, sizes and overlaps), node labels
/// (restricted namespaces, syntax), and whether a proxy leaves the nodes' own addresses alone.
/// </summary>
internal sealed partial class ConfigCheck(ClusterSettings settings) : IPreflightCheck
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
        CheckWireguardModule(results, host);
        var cluster = CheckCidrs(results, "cluster-cidr", "10.42.0.0/16", maxV4Prefix: null, maxV6Prefix: null);
        var service = CheckCidrs(results, "service-cidr", "10.43.0.0/16", maxV4Prefix: 12, maxV6Prefix: 112);
        if (cluster is not null && service is not null)
        {
            // Only ranges that parsed can be compared; a bad one is already reported by its own check.
            CheckDualStack(results, cluster, service);
            CheckOverlap(results, cluster, service);
        }

        CheckNodeLabels(results);
        CheckProxy(results, host, NodeAddresses(host));
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

    /// <summary>The ranges when every item parsed (null when one did not: its problem is reported).</summary>
    private IReadOnlyList<IPNetwork>? CheckCidrs(List<CheckResult> results, string key, string fallback, int? maxV4Prefix, int? maxV6Prefix)
    {
        var setting = settings[key];
        var items = setting?.Items.ToArray() ?? [fallback];
        var location = setting?.Location ?? "default";
        var networks = new List<IPNetwork>();
        var problems = new List<string>();
        var unparsed = items.Length == 0;
        if (unparsed)
        {
            problems.Add($"{key} is empty; give a range such as {fallback}");
        }

        foreach (var item in items)
        {
            if (!IPNetwork.TryParse(item, out var network))
            {
                unparsed = true;
                problems.Add($"\"{item}\" is not a CIDR (address/prefix with the host bits zero, e.g. {fallback})");
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
        return unparsed ? null : networks;
    }

    private void CheckOverlap(List<CheckResult> results, IReadOnlyList<IPNetwork> cluster, IReadOnlyList<IPNetwork> service)
    {
        var overlaps = cluster.SelectMany(c => service.Where(s => Overlaps(c, s)).Select(s => $"cluster-cidr {c} overlaps service-cidr {s}")).ToList();
        results.Add(overlaps.Count == 0
            ? CheckResult.Pass("cidr-overlap", "cluster and service ranges are disjoint")
            : CheckResult.Fail("cidr-overlap", $"{settings["cluster-cidr"]?.Location ?? settings["service-cidr"]?.Location ?? "default"}: {string.Join("; ", overlaps)}: "
                + "a service address would also be a pod address", "give the two flags disjoint ranges, e.g. cluster-cidr: 10.42.0.0/16 and service-cidr: 10.43.0.0/16"));
    }

    /// <summary>flannel's wireguard-native backend creates WireGuard links: the kernel must have the module (loaded, built in, or installed to load).</summary>
    private void CheckWireguardModule(List<CheckResult> results, PreflightHost host)
    {
        if (settings["flannel-backend"] is not { Scalar: "wireguard-native" } setting)
        {
            return;
        }

        results.Add(KernelModules.IsAvailable(host, "wireguard") || KernelModules.IsInstalled(host, "wireguard")
            ? CheckResult.Pass("module-wireguard", "wireguard is available for flannel-backend wireguard-native")
            : CheckResult.Fail("module-wireguard", $"{setting.Location}: flannel-backend wireguard-native needs the wireguard kernel module, "
                + $"which kernel {host.KernelRelease} has neither loaded, built in nor installed",
                "install the kernel's modules (Debian: linux-image-<version> ships wireguard) and modprobe wireguard, or choose flannel-backend: vxlan"));
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
        var malformed = new List<string>();
        foreach (var label in setting.Values)
        {
            if (LabelProblem(label) is { } problem)
            {
                malformed.Add(problem);
                continue;
            }

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

        if (malformed.Count > 0)
        {
            results.Add(CheckResult.Fail("node-label", $"{setting.Location}: {string.Join("; ", malformed)}",
                "labels are key=value: an optional DNS-name prefix and '/', a name of at most 63 letters, digits, '-', '_' or '.' that starts and ends "
                + "with a letter or digit, and a value of the same form (or empty), e.g. example.com/tier=edge"));
        }

        results.Add(refused.Count == 0
            ? CheckResult.Pass("node-label", $"{setting.Values.Count - malformed.Count} label(s) allowed")
            : CheckResult.Fail("node-label", $"{setting.Location}: the node may not set {string.Join(", ", refused)} on itself (NodeRestriction, KEP-279)",
                "set such labels after registration with kubectl label node <name> node-role.kubernetes.io/worker=true, or use your own prefix (e.g. example.com/role=worker)"));
    }

    /// <summary>Why <c>key=value</c> is not a label Kubernetes accepts (apimachinery's validation), or null.</summary>
    internal static string? LabelProblem(string label)
    {
        var equals = label.IndexOf('=', StringComparison.Ordinal);
        if (equals < 0)
        {
            return $"\"{label}\" has no '=' (labels are key=value)";
        }

        var key = label[..equals];
        var value = label[(equals + 1)..];
        var slash = key.LastIndexOf('/');
        var prefix = slash < 0 ? null : key[..slash];
        var name = slash < 0 ? key : key[(slash + 1)..];
        if (prefix is not null && (prefix.Length is 0 or > 253 || !DnsSubdomain().IsMatch(prefix)))
        {
            return $"\"{label}\": prefix \"{prefix}\" is not a DNS name (lower case, at most 253 characters)";
        }

        if (name.Length is 0 or > 63 || !LabelName().IsMatch(name))
        {
            return $"\"{label}\": name \"{name}\" is not a label name";
        }

        return value.Length > 63 || (value.Length > 0 && !LabelName().IsMatch(value))
            ? $"\"{label}\": value \"{value}\" is not a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
            : null;
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex LabelName();

    [System.Text.RegularExpressions.GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex DnsSubdomain();

    /// <summary>
    /// The nodes' own addresses: <c>node-ip</c> and <c>node-external-ip</c> when set, and this host's addresses (not
    /// loopback or link-local). These are what the guides ask NO_PROXY to cover.
    /// </summary>
    private IReadOnlyList<IPAddress> NodeAddresses(PreflightHost host)
    {
        var configured = new[] { "node-ip", "node-external-ip" }
            .SelectMany(key => settings[key]?.Items ?? [])
            .Select(item => IPAddress.TryParse(item, out var address) ? address : null)
            .OfType<IPAddress>();
        return configured.Concat(host.Addresses).Distinct().ToList();
    }

    /// <summary>
    /// With a proxy set, pod, service and cluster-domain traffic must bypass it: K3s and Airlock add the cluster and
    /// service ranges and the cluster domain to containerd's NO_PROXY themselves, so their absence is fine. What
    /// nobody adds is the nodes' own addresses, which the guides ask for: an address NO_PROXY does not cover is a
    /// warning (the proxy might reach the nodes, but usually cannot).
    /// </summary>
    private static void CheckProxy(List<CheckResult> results, PreflightHost host, IReadOnlyList<IPAddress> nodes)
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
            var name = $"{prefix}NO_PROXY";
            if (noProxy.Contains("*"))
            {
                results.Add(CheckResult.Pass(name, "NO_PROXY=* sends nothing through the proxy"));
                continue;
            }

            var excluded = noProxy.Select(Network).OfType<IPNetwork>().ToArray();
            var uncovered = nodes.Where(a => !excluded.Any(e => e.Contains(a))).Select(a => a.ToString()).ToArray();
            results.Add(uncovered.Length == 0
                ? CheckResult.Pass(name, $"the node addresses bypass the proxy ({string.Join(", ", nodes)}); cluster and service ranges are added to containerd's NO_PROXY by Airlock")
                : CheckResult.Warn(name, $"{prefix}HTTP(S)_PROXY is set but {name} does not cover this node's address(es) {string.Join(", ", uncovered)}: "
                    + "traffic to the nodes goes to the proxy unless it can reach them (pod and service ranges need not be listed: Airlock adds them)",
                    $"add the nodes' network to {name} in the service's environment file, e.g. {name}=127.0.0.0/8,{string.Join(",", uncovered.Select(a => a + (a.Contains(':', StringComparison.Ordinal) ? "/128" : "/32")))}"));
        }
    }

    /// <summary>A NO_PROXY entry as a network: a CIDR or a single address (names and domain suffixes are not addresses).</summary>
    private static IPNetwork? Network(string entry) =>
        IPNetwork.TryParse(entry, out var network) ? network
        : IPAddress.TryParse(entry.Trim('[', ']'), out var address) ? new IPNetwork(address, address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)
        : null;

    private static bool Overlaps(IPNetwork a, IPNetwork b) =>
        a.BaseAddress.AddressFamily == b.BaseAddress.AddressFamily && (a.Contains(b.BaseAddress) || b.Contains(a.BaseAddress));
}
