using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Airlock.GoCompat;

namespace Airlock.Node;

/// <summary>
/// A registry endpoint, mirror key or configs key after K3s's <c>normalizeEndpointAddress</c>: a scheme
/// (https unless a loopback host on an odd port), <c>docker.io</c> → <c>registry-1.docker.io</c>, and the path
/// <c>/v2</c> unless the user gave another one, which containerd then uses verbatim (<c>override_path</c>).
/// </summary>
public sealed class EndpointAddress
{
    public const string DockerHubName = "docker.io";
    public const string DockerHubHost = "registry-1.docker.io";

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

    /// <summary>Normalises <paramref name="address"/>; false with Go's parse error when K3s would skip it.</summary>
    public static bool TryNormalize(string address, out EndpointAddress? endpoint, out string error)
    {
        endpoint = null;
        var withScheme = address.Contains("://", StringComparison.Ordinal) ? address : "//" + address;
        if (!GoUrl.TryParse(withScheme, out var url, out error))
        {
            return false;
        }

        if (url.Scheme.Length == 0)
        {
            var port = url.Port;
            url.Scheme = IsLocalhost(url.Host) && port.Length > 0 && port != "443" ? "http" : "https";
        }

        var registry = url.Host;
        if (url.Host == DockerHubName)
        {
            url.Host = DockerHubHost;
        }

        if (url.Host == DockerHubHost)
        {
            registry = DockerHubName;
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

    /// <summary>
    /// containerd's <c>docker.IsLocalhost</c>: <c>localhost</c> or a loopback IP, after removing a port.
    /// IPs are parsed as strictly as Go's <c>net.ParseIP</c> (no <c>127.1</c>, no zones, no leading zeros).
    /// </summary>
    public static bool IsLocalhost(string host)
    {
        if (TrySplitHostPort(host, out var hostOnly))
        {
            host = hostOnly;
        }

        if (host == "localhost")
        {
            return true;
        }

        return TryParseGoIp(host, out var ip) && IPAddress.IsLoopback(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip);
    }

    // Go's net.SplitHostPort, success case only: "host:port" or "[v6]:port".
    private static bool TrySplitHostPort(string hostPort, out string host)
    {
        host = hostPort;
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

            host = hostPort[1..close];
            return true;
        }

        host = hostPort[..colon];
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
