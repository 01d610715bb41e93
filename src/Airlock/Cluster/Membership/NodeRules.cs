using System.Text.RegularExpressions;

namespace Airlock.Cluster.Membership;

/// <summary>
/// Kubernetes's rules for what a node registers: its name (an RFC 1123 subdomain, as a Node object's), its labels (key syntax,
/// and KEP-279: a node may not give itself labels in the <c>kubernetes.io</c> / <c>k8s.io</c> namespaces, such as
/// <c>node-role.kubernetes.io/*</c>, except the ones the kubelet itself sets) and its taints (<c>key[=value]:Effect</c>).
/// </summary>
public static partial class NodeRules
{
    /// <summary>Labels in restricted namespaces a node may still set (the kubelet's own, k8s.io/apis/kubelet).</summary>
    private static readonly HashSet<string> KubeletLabels = new(StringComparer.Ordinal)
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    };

    private static readonly string[] KubeletLabelNamespaces = ["kubelet.kubernetes.io", "node.kubernetes.io"];

    public static readonly IReadOnlyList<string> TaintEffects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

    /// <summary>Null when <paramref name="name"/> can name a node; else what is wrong with it.</summary>
    public static string? CheckName(string name)
    {
        if (name.Length is 0 or > 253 || !Subdomain().IsMatch(name))
        {
            return $"node name \"{name}\" is not valid: use at most 253 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit "
                + "(--node-name)";
        }

        return null;
    }

    /// <summary>Parses <c>key=value</c> labels (<c>--node-label</c>), adding every problem, restricted keys included.</summary>
    public static Dictionary<string, string> ParseLabels(IEnumerable<string> labels, List<string> problems)
    {
        var parsed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var label in labels)
        {
            var equals = label.IndexOf('=', StringComparison.Ordinal);
            var key = equals < 0 ? label : label[..equals];
            var value = equals < 0 ? string.Empty : label[(equals + 1)..];
            if (equals < 0)
            {
                problems.Add($"label \"{label}\" is not key=value");
                continue;
            }

            if (CheckLabel(key, value) is { } problem)
            {
                problems.Add(problem);
                continue;
            }

            parsed[key] = value;
        }

        return parsed;
    }

    /// <summary>Null when a node may register the label <paramref name="key"/>=<paramref name="value"/>; else why not.</summary>
    public static string? CheckLabel(string key, string value)
    {
        if (CheckSyntax("label", key, value) is { } problem)
        {
            return problem;
        }

        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var prefix = slash < 0 ? null : key[..slash];
        if (prefix is not null && IsRestrictedNamespace(prefix) && !IsKubeletLabel(key, prefix))
        {
            return $"label {key} is in a restricted namespace: nodes may not give themselves labels under kubernetes.io or k8s.io "
                + "(KEP-279; e.g. node-role.kubernetes.io/*, which would let a node claim a role) other than the kubelet's own "
                + "(kubernetes.io/hostname, topology.kubernetes.io/zone, node.kubernetes.io/*, …): use a label of your own domain, e.g. example.com/role";
        }

        return null;
    }

    /// <summary>Parses <c>key[=value]:Effect</c> taints (<c>--node-taint</c>), adding every problem.</summary>
    public static List<string> ParseTaints(IEnumerable<string> taints, List<string> problems)
    {
        var parsed = new List<string>();
        foreach (var taint in taints)
        {
            var colon = taint.LastIndexOf(':');
            var effect = colon < 0 ? string.Empty : taint[(colon + 1)..];
            var keyValue = colon < 0 ? taint : taint[..colon];
            var equals = keyValue.IndexOf('=', StringComparison.Ordinal);
            var key = equals < 0 ? keyValue : keyValue[..equals];
            var value = equals < 0 ? string.Empty : keyValue[(equals + 1)..];
            if (!TaintEffects.Contains(effect))
            {
                problems.Add($"taint \"{taint}\" is not key[=value]:effect with effect {string.Join(", ", TaintEffects)}");
            }
            else if (CheckSyntax("taint", key, value) is { } problem)
            {
                problems.Add(problem);
            }
            else
            {
                parsed.Add(taint);
            }
        }

        return parsed;
    }

    /// <summary>Kubernetes's syntax of label (and taint) keys and values.</summary>
    private static string? CheckSyntax(string what, string key, string value)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var prefix = slash < 0 ? null : key[..slash];
        var name = slash < 0 ? key : key[(slash + 1)..];
        if ((prefix is not null && (prefix.Length > 253 || !Subdomain().IsMatch(prefix))) || name.Length is 0 or > 63 || !LabelName().IsMatch(name))
        {
            return $"{what} key \"{key}\" is not valid: an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.', "
                + "starting and ending with a letter or digit";
        }

        if (value.Length > 63 || (value.Length > 0 && !LabelName().IsMatch(value)))
        {
            return $"{what} {key} has an invalid value \"{value}\": at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
        }

        return null;
    }

    private static bool IsRestrictedNamespace(string prefix) =>
        prefix is "kubernetes.io" or "k8s.io"
        || prefix.EndsWith(".kubernetes.io", StringComparison.Ordinal)
        || prefix.EndsWith(".k8s.io", StringComparison.Ordinal);

    private static bool IsKubeletLabel(string key, string prefix) =>
        KubeletLabels.Contains(key)
        || KubeletLabelNamespaces.Any(ns => prefix == ns || prefix.EndsWith("." + ns, StringComparison.Ordinal));

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex Subdomain();

    [GeneratedRegex("^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]
    private static partial Regex LabelName();
}
