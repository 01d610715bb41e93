namespace Airlock.Cluster.Membership;

/// <summary>What a member joined as: an agent (a node), or a server (joined with the server token).</summary>
public enum NodeRole
{
    Agent,
    Server,
}

/// <summary>Ready while heartbeats arrive; NotReady after <see cref="MembershipStore.GraceHeartbeats"/> missed ones.</summary>
public enum NodeStatus
{
    Ready,
    NotReady,
}

/// <summary>
/// What a node tells the cluster with each heartbeat for its peers to use (the peer-to-peer mirror): where its peer mirror
/// serves, which blobs its content store holds and which it is receiving right now. Kept in the server's memory only (it
/// changes with every heartbeat); the server checks its size and digest syntax, nothing else.
/// </summary>
public sealed record NodeAdvertisement
{
    /// <summary>Most digests one advertisement may list in <see cref="Holds"/> and <see cref="Receiving"/> together.</summary>
    public const int MaxDigests = 200_000;

    /// <summary><c>host:port</c> of the node's peer mirror (mutual TLS with its serving certificate); null when it runs none.</summary>
    public string? PeerEndpoint { get; init; }

    /// <summary>Digests (<c>sha256:…</c>) of the blobs its content store holds.</summary>
    public IReadOnlyList<string> Holds { get; init; } = [];

    /// <summary>Digests of the blobs it is receiving now (a peer may read them while they arrive).</summary>
    public IReadOnlyList<string> Receiving { get; init; } = [];

    /// <summary>
    /// Registries its registries.yaml holds credentials for: a peer serves it content of a registry that needs credentials
    /// only when the registry is listed here (the peer-to-peer mirror's rule; no secret is sent).
    /// </summary>
    public IReadOnlyList<string> CredentialedRegistries { get; init; } = [];
}

/// <summary>A member of the cluster as the node list shows it (API, <c>airlock node list</c>, the console).</summary>
public sealed record ClusterNode
{
    public required string Name { get; init; }

    public NodeRole Role { get; init; }

    public NodeStatus Status { get; init; }

    /// <summary>The addresses the node registered (<c>--node-ip</c>), first the one peers should use.</summary>
    public IReadOnlyList<string> Addresses { get; init; } = [];

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary><c>key[=value]:Effect</c>.</summary>
    public IReadOnlyList<string> Taints { get; init; } = [];

    /// <summary>The Airlock version the node runs.</summary>
    public string? Version { get; init; }

    public DateTimeOffset Joined { get; init; }

    /// <summary>The last heartbeat (or the join).</summary>
    public DateTimeOffset LastSeen { get; init; }

    /// <summary>When the node's client certificate expires (it renews before).</summary>
    public DateTimeOffset? CertificateExpires { get; init; }

    /// <summary>Its latest advertisement; null from a node list read from disk (it lives in the running server's memory).</summary>
    public NodeAdvertisement? Advertises { get; init; }
}
