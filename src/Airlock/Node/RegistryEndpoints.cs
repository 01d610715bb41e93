namespace Airlock.Node;

/// <summary>
/// An endpoint containerd may pull from, with the settings that apply to it. <see cref="Url"/> is null for a
/// <c>configs["*"]</c>-only host (TLS without a server URL) and empty for the <c>"*"</c> mirror's server, which K3s
/// writes as <c>server = ""</c>.
/// </summary>
public sealed record ResolvedEndpoint(string? Url, string? RegistryName, bool OverridePath, RegistryConfig? Config, IReadOnlyList<RewriteRule> Rewrites)
{
    public RegistryTls? Tls => Config?.Tls;

    public RegistryAuth? Auth => Config?.Auth;

    /// <summary>K3s's <c>endpointHasConfig</c>: whether this endpoint alone justifies writing a hosts.toml.</summary>
    public bool HasConfig => OverridePath || Config?.Auth is not null || Config?.Tls is not null || Rewrites.Count > 0;
}

/// <summary>
/// One <c>certs.d/&lt;directory&gt;/hosts.toml</c>: the registry's own endpoint (<see cref="Server"/>, null when
/// the default endpoint is disabled) and the mirror endpoints tried before it, in order.
/// </summary>
public sealed record HostsTomlEntry(string Key, string Directory, ResolvedEndpoint? Server, IReadOnlyList<ResolvedEndpoint> Mirrors)
{
    /// <summary>
    /// Whether stock containerd cannot express this host: a <c>rewrite</c> on any endpoint (only K3s's containerd fork
    /// rewrites) or no default endpoint (stock containerd falls back to <c>https://&lt;host&gt;</c> when <c>server</c> is
    /// absent). Such a host is served through the node-local mirror when one is configured.
    /// </summary>
    public bool NeedsNodeMirror => Server is null || Server.Rewrites.Count > 0 || Mirrors.Any(m => m.Rewrites.Count > 0);
}

/// <summary>
/// K3s's <c>getHostConfigs</c>: turns registries.yaml into per-registry endpoint lists, quirks included, so that
/// the hosts.toml files are byte-identical to K3s's and a node-local mirror can use the very same resolution
/// (<see cref="Resolve"/>) to serve what stock containerd cannot express (rewrites, no default endpoint).
/// </summary>
public sealed class RegistryEndpoints
{
    public const string DefaultDirectory = "_default";

    private readonly Dictionary<string, HostsTomlEntry> _hosts;
    private readonly Func<string, bool> _speaksTls;

    public RegistryEndpoints(RegistriesFile registries, bool disableDefaultEndpoint)
    {
        ArgumentNullException.ThrowIfNull(registries);
        var hosts = new Dictionary<string, HostsTomlEntry>(StringComparer.Ordinal);

        // A loopback registry with a CA or client certificate in configs is reached over HTTPS (EndpointAddress.TryNormalize).
        _speaksTls = host => registries.ConfigForHost(host)?.Tls?.Settings.ImpliesTls == true;

        // Configs pass: every configs key gets its default endpoint with that key's own settings.
        foreach (var config in registries.Configs)
        {
            if (DefaultHost(config.Key, config) is { } host)
            {
                hosts[DirectoryFor(config.Key)] = host;
            }
        }

        // Mirrors pass. K3s looks up the raw key here but stored "*" as "_default" above, so a configs["*"] is
        // replaced when "*" is also a mirror (its quirk 3); reproduced so the output matches K3s.
        foreach (var mirror in registries.Mirrors)
        {
            var found = mirror.Key != RegistriesFile.Wildcard && hosts.TryGetValue(mirror.Key, out var existing) ? existing : null;
            HostsTomlEntry? host = found;
            if (host is null)
            {
                host = DefaultHost(mirror.Key, registries.ConfigForHost(mirror.Key));
                if (host is null)
                {
                    continue;
                }

                if (disableDefaultEndpoint)
                {
                    host = host with { Server = null };
                }
                else if (mirror.Key == RegistriesFile.Wildcard)
                {
                    host = host with { Server = new ResolvedEndpoint(string.Empty, null, false, null, []) };
                }
            }

            var server = host.Server;
            var endpoints = new List<ResolvedEndpoint>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < mirror.Endpoints.Count; i++)
            {
                if (!EndpointAddress.TryNormalize(mirror.Endpoints[i].Address, out var address, out _, _speaksTls) || !seen.Add(address!.Url))
                {
                    continue;
                }

                var endpoint = new ResolvedEndpoint(address.Url, address.RegistryName, address.OverridePath, registries.ConfigForHost(address.RegistryName), mirror.Rewrites);

                // Only the last endpoint of the raw list is folded into the server when equal (K3s quirk 4).
                if (i == mirror.Endpoints.Count - 1 && server is { Url: { Length: > 0 } serverUrl } && serverUrl == endpoint.Url)
                {
                    server = endpoint;
                }
                else
                {
                    endpoints.Add(endpoint);
                }
            }

            var directory = DirectoryFor(mirror.Key);
            hosts[directory] = host with { Server = server, Mirrors = endpoints };
        }

        foreach (var (directory, host) in hosts.ToList())
        {
            if (host.Mirrors.Count == 0 && host.Server?.HasConfig != true)
            {
                hosts.Remove(directory);
            }
        }

        _hosts = hosts;
    }

    /// <summary>The hosts.toml files to write, by directory name in ordinal order.</summary>
    public IReadOnlyList<HostsTomlEntry> Hosts => _hosts.Values.OrderBy(h => h.Directory, StringComparer.Ordinal).ToList();

    /// <summary>
    /// Whether the peer-to-peer mirror shares <paramref name="registry"/>'s content between nodes (K3s's embedded registry
    /// rule): it is listed under <c>mirrors</c>, or <c>"*"</c> is; a <c>localhost</c> or loopback registry never is (each
    /// node's own). <paramref name="registry"/> may be <c>"*"</c> itself (the <c>_default</c> hosts.toml).
    /// </summary>
    public static bool IsPeerShared(RegistriesFile registries, string registry)
    {
        ArgumentNullException.ThrowIfNull(registries);
        if (registry != RegistriesFile.Wildcard && Airlock.Remote.RegistryHost.IsLoopback(registry))
        {
            return false;
        }

        return registries.FindMirror(registry) is not null || registries.FindMirror(RegistriesFile.Wildcard) is not null;
    }

    /// <summary>certs.d directory for a registry key: the key itself, <c>_default</c> for <c>"*"</c>.</summary>
    public static string DirectoryFor(string key) => key == RegistriesFile.Wildcard ? DefaultDirectory : key;

    /// <summary>
    /// The endpoints containerd tries for <paramref name="registry"/>, in order: its own certs.d entry, else
    /// <c>_default</c>, else just the registry's default endpoint; the default endpoint comes last unless disabled.
    /// </summary>
    public IReadOnlyList<ResolvedEndpoint> Resolve(string registry)
    {
        if (!_hosts.TryGetValue(registry, out var host) && !_hosts.TryGetValue(DefaultDirectory, out host))
        {
            host = null;
        }

        var result = new List<ResolvedEndpoint>(host?.Mirrors ?? []);
        if (host is not null && host.Server is null)
        {
            return result;
        }

        if (host?.Server is { Url.Length: > 0 } server && host.Key != RegistriesFile.Wildcard)
        {
            result.Add(server);
        }
        else if (EndpointAddress.TryNormalize(registry, out var address, out _, _speaksTls))
        {
            result.Add(new ResolvedEndpoint(address!.Url, address.RegistryName, false, host?.Server?.Config, []));
        }

        return result;
    }

    private HostsTomlEntry? DefaultHost(string key, RegistryConfig? config)
    {
        if (!EndpointAddress.TryNormalize(key, out var address, out _, _speaksTls))
        {
            return null;
        }

        var url = key == RegistriesFile.Wildcard ? null : address!.Url;
        return new HostsTomlEntry(key, DirectoryFor(key), new ResolvedEndpoint(url, address!.RegistryName, address.OverridePath, config, []), []);
    }
}
