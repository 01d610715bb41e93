using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Airlock.Tls;

namespace Airlock.Remote;

/// <summary>
/// One registry as Airlock reaches it: the name image references give it, the host its API is served on, the
/// addresses tried in order, and the credentials and TLS settings in force for it. The one place the Docker Hub
/// aliases, the loopback rule and the merge order of settings (<see cref="RegistryHosts.Apply"/>) live: the
/// registry client, bundles, sync, the node mirror, pull-through and the hosts.toml rendering all ask it.
/// </summary>
public sealed record RegistryHost
{
    /// <summary>Docker Hub's name in image references.</summary>
    public const string DockerHub = "docker.io";

    /// <summary>The host Docker Hub's registry API is served on (containerd's <c>docker.DefaultHost</c>).</summary>
    public const string DockerHubApiHost = "registry-1.docker.io";

    /// <summary>The names Docker Hub goes by; settings may be keyed by any of them, the API host's winning (K3s's <c>configForHost</c>).</summary>
    private static readonly string[] DockerHubNames = [DockerHubApiHost, DockerHub, "index.docker.io"];

    /// <summary>The registry as image references name it: <c>docker.io</c>, <c>registry.example:5000</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Credentials in force for it, or null for anonymous access.</summary>
    public RegistryCredential? Credential { get; init; }

    /// <summary>Its TLS settings (CA, client certificate, skip-verify), or null for the system trust store.</summary>
    public TlsSettings? Tls { get; init; }

    /// <summary>Where it is reached when not at its own name (scheme, host and port), e.g. a sync file's <c>tls: disabled</c>.</summary>
    public Uri? Endpoint { get; init; }

    /// <summary><c>--insecure</c>: plain HTTP after HTTPS fails, and unverified TLS.</summary>
    public bool Insecure { get; init; }

    /// <summary>The host[:port] its API is served on (<c>registry-1.docker.io</c> for Docker Hub).</summary>
    public string ApiHost => ApiHostOf(Name);

    /// <summary>
    /// The base addresses to try, in order: the explicit <see cref="Endpoint"/>; else <c>https://</c> its API host, and
    /// then <c>http://</c> when a plain-HTTP answer is allowed — for a loopback host on a port other than 443 (containerd's
    /// rule for localhost: HTTPS first, then HTTP) unless its TLS settings say it speaks TLS, and with <see cref="Insecure"/>.
    /// </summary>
    public IReadOnlyList<Uri> BaseAddresses
    {
        get
        {
            var first = Endpoint is { } endpoint ? new Uri(endpoint.GetLeftPart(UriPartial.Authority) + "/") : new Uri($"https://{ApiHost}/");
            var plainHttpAllowed = Insecure || (Endpoint is null && IsLoopbackOnOtherPort(ApiHost) && Tls?.ImpliesTls != true);
            return first.Scheme == Uri.UriSchemeHttps && plainHttpAllowed
                ? [first, new UriBuilder(first) { Scheme = Uri.UriSchemeHttp, Port = first.IsDefaultPort ? -1 : first.Port }.Uri]
                : [first];
        }
    }

    /// <summary>True for Docker Hub under any of its names.</summary>
    public static bool IsDockerHub(string registry) => DockerHubNames.Contains(registry, StringComparer.OrdinalIgnoreCase);

    /// <summary>The name settings are kept under: <c>docker.io</c> for any name of Docker Hub, else the name as given.</summary>
    public static string CanonicalName(string registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return IsDockerHub(registry) ? DockerHub : registry;
    }

    /// <summary>The host[:port] a registry's API is served on.</summary>
    public static string ApiHostOf(string registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return IsDockerHub(registry) ? DockerHubApiHost : registry;
    }

    /// <summary>
    /// The keys a registry's settings may be stored under, the one that wins first: for Docker Hub
    /// <c>registry-1.docker.io</c>, <c>docker.io</c>, <c>index.docker.io</c>; for any other registry its name.
    /// </summary>
    public static IReadOnlyList<string> SettingKeys(string registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        return IsDockerHub(registry) ? DockerHubNames : [registry];
    }

    /// <summary>
    /// containerd's <c>docker.IsLocalhost</c>: <c>localhost</c> or a loopback IP (<c>127.0.0.0/8</c>, <c>::1</c>), after
    /// removing a port. IPs are parsed as strictly as Go's <c>net.ParseIP</c> (no <c>127.1</c>, no zones, no leading zeros).
    /// </summary>
    public static bool IsLoopback(string hostAndPort)
    {
        ArgumentNullException.ThrowIfNull(hostAndPort);
        var host = TrySplitHostPort(hostAndPort, out var hostOnly, out _) ? hostOnly : hostAndPort;
        return host == "localhost" || (TryParseGoIp(host, out var ip) && IPAddress.IsLoopback(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip));
    }

    /// <summary>
    /// A loopback host with a port other than 443: where K3s writes a scheme-less endpoint as <c>http://</c> and
    /// containerd tries plain HTTP (after HTTPS, from 1.7 on, when TLS is configured).
    /// </summary>
    public static bool IsLoopbackOnOtherPort(string hostAndPort) =>
        TrySplitHostPort(hostAndPort, out _, out var port) && port.Length > 0 && port != "443" && IsLoopback(hostAndPort);

    // Go's net.SplitHostPort, success case only: "host:port" or "[v6]:port".
    private static bool TrySplitHostPort(string hostPort, out string host, out string port)
    {
        (host, port) = (hostPort, string.Empty);
        var colon = hostPort.LastIndexOf(':');
        if (colon < 0)
        {
            return false;
        }

        if (hostPort.StartsWith('['))
        {
            var close = hostPort.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 != colon)
            {
                return false;
            }

            (host, port) = (hostPort[1..close], hostPort[(colon + 1)..]);
            return true;
        }

        (host, port) = (hostPort[..colon], hostPort[(colon + 1)..]);
        return !host.Contains(':', StringComparison.Ordinal);
    }

    private static bool TryParseGoIp(string s, out IPAddress ip)
    {
        ip = IPAddress.None;
        if (s.Contains(':', StringComparison.Ordinal))
        {
            return s.IndexOfAny(['%', '[', ']']) < 0 && IPAddress.TryParse(s, out ip!) && ip.AddressFamily == AddressFamily.InterNetworkV6;
        }

        var parts = s.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        var bytes = new byte[4];
        for (var i = 0; i < 4; i++)
        {
            var part = parts[i];
            if (part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0') || !part.All(char.IsAsciiDigit)
                || !byte.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out bytes[i]))
            {
                return false;
            }
        }

        ip = new IPAddress(bytes);
        return true;
    }
}
