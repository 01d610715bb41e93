using Airlock.GoCompat;
using Airlock.Remote;

namespace Airlock.Node;

/// <summary>
/// A registry endpoint, mirror key or configs key after K3s's <c>normalizeEndpointAddress</c>: a scheme
/// (https unless a loopback host on an odd port — see <see cref="TryNormalize"/> for the one exception),
/// <c>docker.io</c> → <c>registry-1.docker.io</c>, and the path <c>/v2</c> unless the user gave another one, which
/// containerd then uses verbatim (<c>override_path</c>). The host rules are <see cref="RegistryHost"/>'s.
/// </summary>
public sealed class EndpointAddress
{
    private readonly GoUrl _url;

    private EndpointAddress(GoUrl url, string registryName, bool overridePath)
    {
        _url = url;
        RegistryName = registryName;
        OverridePath = overridePath;
    }

    /// <summary>The registry whose <c>configs</c> entry applies: host[:port] as written, <c>docker.io</c> for Docker Hub.</summary>
    public string RegistryName { get; }

    /// <summary>True when the path is not <c>""</c>, <c>/</c> or <c>/v2</c>: containerd must not append <c>/v2</c> itself.</summary>
    public bool OverridePath { get; }

    /// <summary>Host[:port] the requests go to (after the Docker Hub rewrite).</summary>
    public string Host => _url.Host;

    public string Scheme => _url.Scheme;

    /// <summary>The URL as K3s writes and compares it (Go's <c>url.URL.String()</c>).</summary>
    public string Url => _url.ToString();

    public override string ToString() => Url;

    /// <summary>
    /// Normalises <paramref name="address"/>; false with Go's parse error when K3s would skip it. A scheme-less loopback
    /// address on a port other than 443 is <c>http</c>, as K3s writes it, unless <paramref name="speaksTls"/> says the
    /// registry at that host[:port] has TLS configured (a CA or client certificate in <c>configs</c>): then it is
    /// <c>https</c>, so the CA is used at all. K3s writes <c>http</c> there too, and containerd 1.6 then speaks plain HTTP
    /// to a TLS registry; 1.7 and 2.x try HTTPS first in that case, which is what <c>https</c> says for every version.
    /// </summary>
    public static bool TryNormalize(string address, out EndpointAddress? endpoint, out string error, Func<string, bool>? speaksTls = null)
    {
        endpoint = null;
        var withScheme = address.Contains("://", StringComparison.Ordinal) ? address : "//" + address;
        if (!GoUrl.TryParse(withScheme, out var url, out error))
        {
            return false;
        }

        if (url.Scheme.Length == 0)
        {
            url.Scheme = RegistryHost.IsLoopbackOnOtherPort(url.Host) && speaksTls?.Invoke(url.Host) != true ? "http" : "https";
        }

        var registry = url.Host;
        if (url.Host == RegistryHost.DockerHub)
        {
            url.Host = RegistryHost.DockerHubApiHost;
        }

        if (url.Host == RegistryHost.DockerHubApiHost)
        {
            registry = RegistryHost.DockerHub;
        }

        var overridePath = false;
        if (url.Path is "" or "/" or "/v2")
        {
            url.SetDecodedPath("/v2");
        }
        else
        {
            overridePath = true;
        }

        endpoint = new EndpointAddress(url, registry, overridePath);
        return true;
    }
}
