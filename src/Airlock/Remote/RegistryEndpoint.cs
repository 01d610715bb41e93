using System.Globalization;
using System.Net;
using Airlock.Oci;

namespace Airlock.Remote;

/// <summary>
/// Where a registry name is reached: <c>https://&lt;host&gt;</c>, except a loopback host (<c>localhost</c>,
/// <c>127.0.0.0/8</c>, <c>::1</c>) on a port other than 443, which is plain HTTP as in K3s and containerd;
/// <c>docker.io</c> is served by <c>registry-1.docker.io</c>.
/// </summary>
public static class RegistryEndpoint
{
    public const string DockerHubApiHost = "registry-1.docker.io";

    /// <summary>The host[:port] the registry's API is served on.</summary>
    public static string ApiHost(string registry) =>
        string.Equals(registry, ImageReference.DockerHub, StringComparison.OrdinalIgnoreCase) ? DockerHubApiHost : registry;

    /// <summary>The base address (scheme, host, port; no path) for a registry name.</summary>
    public static Uri DefaultBaseAddress(string registry)
    {
        var host = ApiHost(registry);
        var scheme = UsesPlainHttp(host) ? Uri.UriSchemeHttp : Uri.UriSchemeHttps;
        return new Uri($"{scheme}://{host}/");
    }

    /// <summary>True for a loopback host with an explicit port other than 443 (K3s's rule for scheme-less endpoints).</summary>
    public static bool UsesPlainHttp(string hostAndPort)
    {
        var (host, port) = Split(hostAndPort);
        return port is not null && port != 443 && IsLoopback(host);
    }

    /// <summary><c>localhost</c>, any <c>127.0.0.0/8</c> address or <c>::1</c>.</summary>
    public static bool IsLoopback(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        var bare = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        return IPAddress.TryParse(bare, out var address) && IPAddress.IsLoopback(address);
    }

    /// <summary>The names credentials are looked up under, most specific first (docker.io: registry-1.docker.io, then docker.io).</summary>
    public static IReadOnlyList<string> CredentialHosts(string registry) =>
        string.Equals(ApiHost(registry), DockerHubApiHost, StringComparison.OrdinalIgnoreCase)
            ? [DockerHubApiHost, ImageReference.DockerHub]
            : [registry];

    /// <summary>Splits <c>host[:port]</c>, with IPv6 addresses in brackets.</summary>
    internal static (string Host, int? Port) Split(string hostAndPort)
    {
        ArgumentNullException.ThrowIfNull(hostAndPort);
        var close = hostAndPort.LastIndexOf(']');
        var colon = hostAndPort.LastIndexOf(':');
        if (colon > close && hostAndPort.IndexOf(':', StringComparison.Ordinal) == colon || (close > 0 && colon > close))
        {
            return int.TryParse(hostAndPort.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
                ? (hostAndPort[..colon], port)
                : (hostAndPort, null);
        }

        return (hostAndPort, null);
    }
}
