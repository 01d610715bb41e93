using Airlock.Tls;

namespace Airlock.Remote;

/// <summary>What one source of settings says about one registry, or with <see cref="RegistryHosts.EveryRegistry"/> about all.</summary>
public sealed record RegistryHostSettings
{
    /// <summary>A registry name as image references write it (<c>docker.io</c>, <c>registry.example:5000</c>) or <c>*</c>.</summary>
    public required string Registry { get; init; }

    public RegistryCredential? Credential { get; init; }

    /// <summary>TLS settings; fields set here replace the earlier source's, skip-verify adds to it.</summary>
    public TlsSettings? Tls { get; init; }

    /// <summary>Scheme, host and port to reach the registry at instead of its own name.</summary>
    public Uri? Endpoint { get; init; }
}

/// <summary>
/// The registries a client knows settings for, merged in one order. Sources are applied one after the other, and for
/// each registry and each field the later source wins:
/// <list type="number">
/// <item>the rules every registry follows (<see cref="RegistryHost"/>: Docker Hub's names, the loopback rule);</item>
/// <item>registries.yaml <c>configs</c> (<c>--registries</c>, the agent's and the mirror's file): per registry;</item>
/// <item>the command line: <c>--creds</c> for every registry, <c>--insecure</c> for every registry;</item>
/// <item>a job's own file: a sync file's <c>creds</c> entries, per registry, and a pull-through upstream's URL.</item>
/// </list>
/// A source's entry for one registry beats its entry for every registry (<c>*</c>); registries.yaml's <c>*</c> is not a
/// client setting (K3s applies it to the <c>_default</c> hosts.toml only).
/// </summary>
public static class RegistryHosts
{
    public const string EveryRegistry = "*";

    /// <summary>
    /// <paramref name="options"/> with <paramref name="source"/> applied over what it holds (see the order above). Docker
    /// Hub's names are one registry: settings for <c>registry-1.docker.io</c> and for <c>docker.io</c> land on the same
    /// registry, the later entry of a source winning.
    /// </summary>
    public static RemoteOptions Apply(RemoteOptions options, IEnumerable<RegistryHostSettings> source)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        var credentials = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
        RegistryCredential? everywhere = null;
        var tls = new Dictionary<string, TlsSettings>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in options.Tls)
        {
            tls[RegistryHost.CanonicalName(key)] = tls.TryGetValue(RegistryHost.CanonicalName(key), out var earlier) ? earlier.Merge(value) : value;
        }

        var endpoints = new Dictionary<string, Uri>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in options.Endpoints)
        {
            endpoints[RegistryHost.CanonicalName(key)] = value;
        }

        foreach (var settings in source)
        {
            if (settings.Registry == EveryRegistry)
            {
                everywhere = settings.Credential ?? everywhere;
                continue;
            }

            var name = RegistryHost.CanonicalName(settings.Registry);
            if (settings.Credential is { } credential)
            {
                credentials[name] = credential;
            }

            if (settings.Tls is { } added)
            {
                tls[name] = tls.TryGetValue(name, out var earlier) ? earlier.Merge(added) : added;
            }

            if (settings.Endpoint is { } endpoint)
            {
                endpoints[name] = endpoint;
            }
        }

        return options with
        {
            Credentials = credentials.Count == 0 && everywhere is null
                ? options.Credentials
                : new LayeredCredentials(credentials, everywhere, options.Credentials),
            Tls = tls,
            Endpoints = endpoints,
        };
    }

    /// <summary>Everything <paramref name="options"/> says about <paramref name="registry"/>.</summary>
    public static RegistryHost Resolve(RemoteOptions options, string registry)
    {
        ArgumentNullException.ThrowIfNull(options);
        var keys = RegistryHost.SettingKeys(registry);
        return new RegistryHost
        {
            Name = registry,
            Credential = keys.Select(options.Credentials.Find).FirstOrDefault(c => c is not null),
            Tls = keys.Select(k => options.Tls.GetValueOrDefault(k)).FirstOrDefault(t => t is not null),
            Endpoint = keys.Select(k => options.Endpoints.GetValueOrDefault(k)).FirstOrDefault(e => e is not null),
            Insecure = options.Insecure,
        };
    }

    /// <summary>A later source's credentials (by registry, then for every registry) before an earlier source's.</summary>
    private sealed class LayeredCredentials(Dictionary<string, RegistryCredential> byRegistry, RegistryCredential? everywhere, IRegistryCredentialSource earlier)
        : IRegistryCredentialSource
    {
        public RegistryCredential? Find(string host) =>
            byRegistry.TryGetValue(RegistryHost.CanonicalName(host), out var credential) ? credential : everywhere ?? earlier.Find(host);
    }
}
