using Airlock.Distribution;
using Airlock.Oci;
using Airlock.Remote;

namespace Airlock.Registry.PullThrough;

/// <summary>
/// One <c>--proxy REGISTRY=URL</c>: content of <paramref name="Registry"/> (a registry name as in image
/// references, e.g. <c>docker.io</c> or <c>registry.example:5000</c>, or <c>*</c> for every other registry)
/// is fetched from <paramref name="Address"/>.
/// </summary>
public sealed record PullThroughUpstream(string Registry, Uri Address)
{
    public const string Wildcard = "*";

    /// <summary>
    /// The name the registry client, credentials and TLS settings know the upstream by: the URL's
    /// <c>host[:port]</c>, as K3s keys <c>configs</c> by endpoint host.
    /// </summary>
    public string ClientRegistry => Address.IsDefaultPort ? Address.Host : Address.Authority;

    /// <summary>Parses <c>REGISTRY=URL</c>; <paramref name="error"/> names the problem otherwise.</summary>
    public static bool TryParse(string text, out PullThroughUpstream? upstream, out string error)
    {
        upstream = null;
        var equals = text.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0 || equals == text.Length - 1)
        {
            error = $"--proxy \"{text}\" is not REGISTRY=URL (e.g. docker.io=https://registry-1.docker.io)";
            return false;
        }

        var registry = text[..equals].Trim().ToLowerInvariant();
        var url = text[(equals + 1)..].Trim();
        if (registry != Wildcard && PullThroughRouter.LocalPrefix(registry) is null)
        {
            error = $"--proxy \"{text}\": \"{registry}\" is not a registry name like docker.io or registry.example:5000";
            return false;
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var address) || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps)
            || !string.IsNullOrEmpty(address.Query) || address.AbsolutePath.TrimEnd('/') is { Length: > 0 } path && path != "/v2")
        {
            error = $"--proxy \"{text}\": \"{url}\" is not an http(s) URL of a registry (scheme, host, optional port, no path)";
            return false;
        }

        upstream = new PullThroughUpstream(registry, address);
        error = string.Empty;
        return true;
    }
}

/// <summary>Makes the registry a pull-through cache (<c>airlock registry --proxy …</c>).</summary>
public sealed record PullThroughOptions
{
    public static readonly TimeSpan DefaultTagTtl = TimeSpan.FromMinutes(5);

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Upstreams by registry name; at most one per name and one <c>*</c>.</summary>
    public required IReadOnlyList<PullThroughUpstream> Upstreams { get; init; }

    /// <summary>How long a cached tag is served before the upstream is asked again. Digests never expire.</summary>
    public TimeSpan TagTtl { get; init; } = DefaultTagTtl;

    /// <summary>Connect and response timeout of each upstream request (two attempts at most), so a cold miss
    /// on an unreachable upstream fails within about twice this.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>Credentials and TLS for the upstreams (from a registries.yaml <c>configs</c>, keyed by upstream host).</summary>
    public RemoteOptions Remote { get; init; } = new();

    /// <summary>True when the upstream has credentials configured: its content then never reaches anonymous clients.</summary>
    public bool IsPrivate(PullThroughUpstream upstream)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        return RegistryHosts.Resolve(Remote, upstream.ClientRegistry).Credential is not null;
    }

    /// <summary>Every problem at once; empty when usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Upstreams.Count == 0)
        {
            problems.Add("--proxy needs at least one REGISTRY=URL");
        }

        foreach (var duplicate in Upstreams.GroupBy(u => u.Registry, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
        {
            problems.Add($"--proxy names registry \"{duplicate.Key}\" more than once");
        }

        if (TagTtl < TimeSpan.Zero)
        {
            problems.Add("--proxy-tag-ttl must not be negative");
        }

        if (Timeout <= TimeSpan.Zero)
        {
            problems.Add("--proxy-timeout must be positive");
        }

        return problems;
    }
}

/// <summary>A request for a proxied repository: where it lives locally and where it comes from.</summary>
/// <param name="LocalName">The repository in this registry's store, <c>&lt;registry&gt;/&lt;repository&gt;</c>.</param>
/// <param name="Registry">The registry the content belongs to (the <c>ns</c> or path prefix).</param>
/// <param name="Repository">The repository on the upstream.</param>
internal sealed record ProxyTarget(string LocalName, string Registry, string Repository, PullThroughUpstream Upstream, bool Private)
{
    public ImageReference UpstreamReference => new() { Registry = Upstream.ClientRegistry, Repository = Repository };
}

/// <summary>
/// Decides whether a request is for a proxied repository. With <c>?ns=&lt;registry&gt;</c> (containerd
/// adds it to every mirror request) the registry is the ns value and the path is the upstream repository.
/// Without ns, a first path component naming a proxied registry (<c>docker.io/library/alpine</c>; a port is
/// written <c>_port</c>: <c>registry.example_5000/app</c>) selects it. Anything else is a local repository.
/// Cached content is stored under <c>&lt;registry&gt;/&lt;repository&gt;</c> either way, so the two forms
/// share one cache and registries never collide.
/// </summary>
internal sealed class PullThroughRouter(PullThroughOptions options)
{
    private readonly Dictionary<string, PullThroughUpstream> _byRegistry = options.Upstreams
        .Where(u => u.Registry != PullThroughUpstream.Wildcard)
        .ToDictionary(u => u.Registry, StringComparer.OrdinalIgnoreCase);

    private readonly PullThroughUpstream? _wildcard = options.Upstreams.FirstOrDefault(u => u.Registry == PullThroughUpstream.Wildcard);

    /// <summary>The target for a request to <paramref name="name"/> with the given ns, or null for a local repository.</summary>
    public ProxyTarget? Resolve(string name, string? ns)
    {
        if (!string.IsNullOrEmpty(ns))
        {
            var registry = ns.Trim().ToLowerInvariant();
            var upstream = UpstreamFor(registry);
            if (upstream is null)
            {
                return null;
            }

            var prefix = LocalPrefix(registry)
                ?? throw new OciException(OciErrorCode.NameInvalid, $"ns \"{ns}\" is not a registry name this cache can store");
            var local = $"{prefix}/{name}";
            if (!ImageReference.IsValidRepository(local))
            {
                throw new OciException(OciErrorCode.NameInvalid, $"repository {name} of {registry} is too long to cache as {local}");
            }

            return Target(local, registry, name, upstream);
        }

        return FromLocalName(name);
    }

    /// <summary>The target of a local repository name <c>&lt;registry&gt;/&lt;repository&gt;</c>, or null when not proxied.</summary>
    public ProxyTarget? FromLocalName(string name)
    {
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0)
        {
            return null;
        }

        var first = name[..slash];
        var registry = _byRegistry.Keys.FirstOrDefault(r => LocalPrefix(r) == first);
        if (registry is null)
        {
            if (_wildcard is null || !LooksLikeHost(first))
            {
                return null;
            }

            registry = RegistryFromPrefix(first);
        }

        return Target(name, registry, name[(slash + 1)..], UpstreamFor(registry)!);
    }

    /// <summary><c>docker.io</c> → <c>docker.io</c>, <c>host:5000</c> → <c>host_5000</c>; null when no valid path component results.</summary>
    internal static string? LocalPrefix(string registry)
    {
        var prefix = registry.ToLowerInvariant().Replace(':', '_');
        return prefix.Length > 0 && !prefix.Contains('/', StringComparison.Ordinal) && ImageReference.IsValidRepository(prefix) ? prefix : null;
    }

    private PullThroughUpstream? UpstreamFor(string registry) =>
        _byRegistry.TryGetValue(registry, out var upstream) ? upstream : _wildcard;

    private ProxyTarget Target(string local, string registry, string repository, PullThroughUpstream upstream)
    {
        // Docker Hub's official images live under library/ (containerd always sends the full name).
        if (registry == ImageReference.DockerHub && !repository.Contains('/', StringComparison.Ordinal))
        {
            repository = "library/" + repository;
        }

        return new ProxyTarget(local, registry, repository, upstream, options.IsPrivate(upstream));
    }

    // Docker's rule for a registry in a reference: a dot, a port, or localhost.
    private static bool LooksLikeHost(string component) =>
        component.Contains('.', StringComparison.Ordinal) || component == "localhost" || PortSuffix(component) > 0;

    private static string RegistryFromPrefix(string component)
    {
        var port = PortSuffix(component);
        return port > 0 ? component[..port] + ":" + component[(port + 1)..] : component;
    }

    // Index of the '_' in "<host>_<digits>", or -1.
    private static int PortSuffix(string component)
    {
        var underscore = component.LastIndexOf('_');
        return underscore > 0 && underscore < component.Length - 1 && component.AsSpan(underscore + 1).IndexOfAnyExceptInRange('0', '9') < 0
            ? underscore
            : -1;
    }
}
