using System.Collections;
using System.Text;

namespace Airlock.Node;

/// <summary>Addresses containerd must reach directly even when a proxy is set.</summary>
public sealed record ClusterNetworks
{
    public IReadOnlyList<string> ClusterCidrs { get; init; } = [];

    public IReadOnlyList<string> ServiceCidrs { get; init; } = [];

    public string ClusterDomain { get; init; } = "cluster.local";

    public IReadOnlyList<string> NodeNames { get; init; } = [];
}

/// <summary>
/// The proxy environment for containerd, as K3s builds it: <c>HTTP_PROXY</c>/<c>HTTPS_PROXY</c>/<c>NO_PROXY</c> from
/// the service environment, overridden by <c>CONTAINERD_</c>-prefixed variants (which apply to containerd only,
/// so image pulls can use a proxy the rest of the node does not), and NO_PROXY extended with the cluster's own
/// addresses so pod, service and node traffic never goes through the proxy.
/// </summary>
public static class ContainerdProxyEnvironment
{
    public const string ContainerdPrefix = "CONTAINERD_";

    private static readonly string[] ProxyVariables = ["HTTP_PROXY", "HTTPS_PROXY"];

    /// <summary>Variables to give containerd, in a fixed order; empty when no proxy is configured.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Build(IDictionary environment, ClusterNetworks networks)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(networks);
        var result = new List<KeyValuePair<string, string>>();
        foreach (var name in ProxyVariables)
        {
            if (Lookup(environment, name) is { } value)
            {
                result.Add(new(name, value));
            }
        }

        if (result.Count == 0)
        {
            return result;
        }

        var noProxy = new List<string>();
        void Add(string entry)
        {
            entry = entry.Trim();
            if (entry.Length > 0 && !noProxy.Contains(entry, StringComparer.OrdinalIgnoreCase))
            {
                noProxy.Add(entry);
            }
        }

        foreach (var entry in (Lookup(environment, "NO_PROXY") ?? string.Empty).Split(','))
        {
            Add(entry);
        }

        Add(".svc");
        Add("." + networks.ClusterDomain.TrimStart('.'));
        foreach (var entry in networks.ClusterCidrs.Concat(networks.ServiceCidrs).Concat(networks.NodeNames))
        {
            Add(entry);
        }

        result.Add(new("NO_PROXY", string.Join(',', noProxy)));
        return result;
    }

    /// <summary>The variables as a systemd <c>EnvironmentFile</c> (one <c>KEY=value</c> per line).</summary>
    public static string Render(IReadOnlyList<KeyValuePair<string, string>> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var sb = new StringBuilder();
        foreach (var (name, value) in variables)
        {
            sb.Append(name).Append('=');
            if (value.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '\\' or '$'))
            {
                sb.Append('"').Append(value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)).Append('"');
            }
            else
            {
                sb.Append(value);
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    // CONTAINERD_X wins over X; either spelling (upper or lower case) is accepted, as Go's proxy lookup does.
    private static string? Lookup(IDictionary environment, string name)
    {
        foreach (var candidate in new[] { ContainerdPrefix + name, ContainerdPrefix + name.ToLowerInvariant(), name, name.ToLowerInvariant() })
        {
            if (environment[candidate] is string { Length: > 0 } value)
            {
                return value;
            }
        }

        return null;
    }
}
