using System.Net;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Tokens;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Cluster.Supervisor;

/// <summary>Everything <see cref="ClusterServer"/> needs, bound from flags, config.yaml and env by the CLI.</summary>
public sealed record ClusterServerOptions
{
    public required string DataDirectory { get; init; }

    /// <summary>Where the supervisor API listens (<c>--listen</c>).</summary>
    public IPEndPoint Listen { get; init; } = new(IPAddress.Any, SupervisorPaths.DefaultPort);

    /// <summary>Extra names and addresses of the serving certificates (<c>--tls-san</c>).</summary>
    public IReadOnlyList<string> TlsSans { get; init; } = [];

    /// <summary>The server token (<c>--token</c>): a bare secret or a full K10 token; null: the stored one, or a new one.</summary>
    public string? Token { get; init; }

    /// <summary>The agent token (<c>--agent-token</c>); null: the stored one, if any.</summary>
    public string? AgentToken { get; init; }

    public string NodeName { get; init; } = Dns.GetHostName().ToLowerInvariant();

    /// <summary>Renew certificates within this of expiry (<c>--cert-renew-within</c>), at server start and on members.</summary>
    public TimeSpan RenewWithin { get; init; } = ServerPki.DefaultRenewWithin;

    /// <summary>How often members send heartbeats.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Serve the embedded registry here (<c>--embedded-registry</c>); null: none.</summary>
    public IPEndPoint? EmbeddedRegistry { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>Every problem at once; empty when the server can start.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            problems.Add("--data-dir must not be empty");
        }

        if (NodeRules.CheckName(NodeName) is { } name)
        {
            problems.Add(name);
        }

        foreach (var (flag, value, kind) in new[] { ("--token", Token, JoinTokenKind.Server), ("--agent-token", AgentToken, JoinTokenKind.Node) })
        {
            if (value is null)
            {
                continue;
            }

            if (!JoinToken.TryParse(value, kind, allowBareSecret: true, out var parsed, out var error))
            {
                problems.Add($"{flag}: {error}");
            }
            else if (parsed.Kind != kind)
            {
                problems.Add($"{flag} is a {ClusterTokens.Describe(parsed.Kind)}; it must be a {ClusterTokens.Describe(kind)} or a bare secret");
            }
        }

        foreach (var san in TlsSans)
        {
            var trimmed = san.Trim().TrimStart('[').TrimEnd(']');
            if (!IPAddress.TryParse(trimmed, out _) && Uri.CheckHostName(trimmed) != UriHostNameType.Dns)
            {
                problems.Add($"--tls-san \"{san}\" is neither a host name nor an IP address");
            }
        }

        if (HeartbeatInterval < TimeSpan.FromSeconds(1) || HeartbeatInterval > TimeSpan.FromHours(1))
        {
            problems.Add("--heartbeat-interval must be between 1s and 1h");
        }

        if (RenewWithin <= TimeSpan.Zero || RenewWithin >= ServerPki.LeafValidity)
        {
            problems.Add($"--cert-renew-within must be longer than 0 and shorter than the certificates' {ServerPki.LeafValidity.TotalDays:0} days");
        }

        if (EmbeddedRegistry is { } registry && registry.Port != 0 && registry.Port == Listen.Port && (registry.Address.Equals(Listen.Address) || IsAny(registry.Address) || IsAny(Listen.Address)))
        {
            problems.Add($"--registry-listen {registry} and --listen {Listen} are the same port");
        }

        return problems;
    }

    private static bool IsAny(IPAddress address) => address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);
}
