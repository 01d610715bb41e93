using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Node.Mirror;

/// <summary>How the node-local mirror listens and how long it gives an upstream endpoint before trying the next.</summary>
public sealed record MirrorOptions
{
    public const int DefaultPort = 5100;

    /// <summary>Loopback only by default: the mirror holds the node's registry credentials and must not serve other hosts.</summary>
    public static IPEndPoint DefaultAddress => new(IPAddress.Loopback, DefaultPort);

    /// <summary>Where the mirror listens; the same address is given to <c>registries render --mirror-address</c>.</summary>
    public IPEndPoint Listen { get; init; } = DefaultAddress;

    /// <summary>K3s's <c>--disable-default-registry-endpoint</c>: registries under <c>mirrors</c> never fall back to their own endpoint.</summary>
    public bool DisableDefaultEndpoint { get; init; }

    /// <summary>How long connecting (TCP and TLS) to one endpoint may take before the next endpoint is tried.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long an endpoint may take to answer with headers (an endpoint that accepts connections but never answers
    /// is abandoned after this), and how long a blob body may stall before the transfer is cut.
    /// </summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// After a connection failure or timeout an endpoint is tried after the healthy ones for this long, so a dead
    /// mirror costs one timeout per window instead of one per request.
    /// </summary>
    public TimeSpan DownFor { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The peer-to-peer mirror: blobs of the registries it shares are asked of it (it asks peers, then the registry
    /// through <see cref="MirrorBlobRequest.OpenFromRegistry"/>); null: every request goes to the endpoints.
    /// </summary>
    public IMirrorBlobSource? BlobSource { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>Every problem with the options, empty when they can be used.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (ConnectTimeout <= TimeSpan.Zero)
        {
            problems.Add("the connect timeout must be positive");
        }

        if (ResponseTimeout <= TimeSpan.Zero && ResponseTimeout != Timeout.InfiniteTimeSpan)
        {
            problems.Add("the response timeout must be positive");
        }

        if (DownFor < TimeSpan.Zero)
        {
            problems.Add("the down-for time must not be negative");
        }

        if (Listen.Port is < 0 or > 65535)
        {
            problems.Add($"port {Listen.Port} is out of range");
        }

        return problems;
    }

    /// <summary>The <c>server</c> URL containerd is given for a registry the mirror serves (<see cref="HostsTomlWriter.MirrorServerUrl"/>).</summary>
    public static string ServerUrl(IPEndPoint address) => HostsTomlWriter.MirrorServerUrl(address);
}
