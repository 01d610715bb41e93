using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;

namespace Airlock.Cluster.Supervisor;

/// <summary>
/// The supervisor API's paths. <c>/cacerts</c> needs no authentication (its hash is in the join token); a join authenticates
/// with the token's credential (HTTP Basic, as K3s); everything else with the member's client certificate.
/// </summary>
public static class SupervisorPaths
{
    public const string CaCerts = "/cacerts";
    public const string Join = "/v1/join";
    public const string Heartbeat = "/v1/heartbeat";
    public const string Renew = "/v1/renew";
    public const string Nodes = "/v1/nodes";
    public const string Health = "/healthz";

    /// <summary>The default supervisor port (<c>--listen 0.0.0.0:9443</c>).</summary>
    public const int DefaultPort = 9443;
}

/// <summary>POST /v1/join: who the node is, what it registers, and CSRs for its two certificates.</summary>
public sealed record JoinRequest
{
    public required string Name { get; init; }

    public NodeRole Role { get; init; }

    /// <summary>The node password: only its holder may take this name again.</summary>
    public required string Password { get; init; }

    public Dictionary<string, string> Labels { get; init; } = [];

    public List<string> Taints { get; init; } = [];

    public List<string> Addresses { get; init; } = [];

    public string? Version { get; init; }

    public required NodeCertificateRequests Certificates { get; init; }
}

/// <summary>What a member is told at join, renewal and each heartbeat.</summary>
public sealed record MemberSettings
{
    /// <summary>Send a heartbeat this often.</summary>
    public int HeartbeatSeconds { get; init; }

    /// <summary>Renew certificates when they are within this of expiry.</summary>
    public long RenewWithinSeconds { get; init; }

    /// <summary>SHA-256 of the server CA bundle now: when it is not the member's, the CA was rotated and it renews.</summary>
    public required string CaHash { get; init; }
}

/// <summary>The answer to a join or a renewal.</summary>
public sealed record CertificatesResponse
{
    public required string Name { get; init; }

    public required NodeCertificateSet Certificates { get; init; }

    public required MemberSettings Settings { get; init; }
}

/// <summary>POST /v1/heartbeat: the node is alive, at these addresses, running this version, advertising this.</summary>
public sealed record HeartbeatRequest
{
    public List<string>? Addresses { get; init; }

    public string? Version { get; init; }

    public NodeAdvertisement? Advertises { get; init; }
}

/// <summary>POST /v1/renew: new CSRs (new keys) for the member's two certificates.</summary>
public sealed record RenewRequest
{
    public required NodeCertificateRequests Certificates { get; init; }

    public List<string>? Addresses { get; init; }
}

/// <summary>GET /v1/nodes.</summary>
public sealed record NodeListResponse(IReadOnlyList<ClusterNode> Nodes);

/// <summary>Every refusal: what is wrong and what to do.</summary>
public sealed record ErrorResponse(string Error);
