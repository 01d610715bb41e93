using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Cluster.Peers;

/// <summary>How a node's peer-to-peer mirror listens, where it keeps blobs, and how long it gives a peer.</summary>
public sealed record PeerMirrorOptions
{
    /// <summary>K3s's (Spegel's) peer port.</summary>
    public const int DefaultPort = 5001;

    /// <summary>Where peers reach this node (<c>--p2p-listen</c>, default <c>&lt;node-ip&gt;:5001</c>); mutual TLS.</summary>
    public required IPEndPoint Listen { get; init; }

    /// <summary>The folder of the blobs this node received for shared registries (<c>&lt;data-dir&gt;/agent/p2p</c>).</summary>
    public required string StoreDirectory { get; init; }

    /// <summary>
    /// The bound on one peer: connecting (TCP and TLS), waiting for its answer, and any stall of its body. After it the
    /// next peer is asked, then the registry, so a dead or silent peer costs at most this long per blob.
    /// </summary>
    public TimeSpan PeerTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the peer list (with what each peer holds and receives) is read from the server's membership.</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>A peer that failed is not asked again for this long (it may be back after).</summary>
    public TimeSpan DownFor { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether tags are resolved by peers before the registry (<c>--p2p-share-tags</c>, off by default): a peer answers
    /// what the registry told it last, which may be stale (an old <c>:latest</c>). Manifests and blobs stay addressed by
    /// digest either way. Peers answer others' tag lookups regardless; this decides whether this node asks.
    /// </summary>
    public bool ShareTags { get; init; }

    /// <summary>
    /// The socket of this node's containerd (the one the agent runs, or <c>--containerd-socket</c>): its content store is
    /// advertised and served to peers, and the p2p store's copy of a blob is dropped once containerd holds it. Null: the
    /// p2p store alone.
    /// </summary>
    public string? ContainerdSocket { get; init; }

    /// <summary>The containerd namespace whose content is shared: the CRI's, where kubelet's pulls and the images directory's imports land.</summary>
    public string ContainerdNamespace { get; init; } = "k8s.io";

    /// <summary>How often containerd's content store is listed (what is advertised, and what the p2p store may drop).</summary>
    public TimeSpan ContentScanInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most peers asked for one blob before the registry.</summary>
    public int MaxPeersPerBlob { get; init; } = 3;

    /// <summary>
    /// Test-only fault of the peer side (from <c>AIRLOCK_P2P_TEST_FAULT</c>): <c>corrupt</c> flips a byte of every blob it
    /// serves to peers; <c>hold:PATH</c> sends half of each blob, creates PATH, and then sends nothing more. Null in service.
    /// </summary>
    public string? TestFault { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>Every problem at once; empty when the options can be used.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (PeerTimeout <= TimeSpan.Zero)
        {
            problems.Add("--p2p-peer-timeout must be positive");
        }

        if (RefreshInterval <= TimeSpan.Zero)
        {
            problems.Add("the peer refresh interval must be positive");
        }

        if (ContentScanInterval <= TimeSpan.Zero)
        {
            problems.Add("the containerd content scan interval must be positive");
        }

        if (DownFor < TimeSpan.Zero)
        {
            problems.Add("the down-for time must not be negative");
        }

        if (MaxPeersPerBlob < 0)
        {
            problems.Add("the most peers asked per blob must not be negative");
        }

        if (string.IsNullOrWhiteSpace(StoreDirectory))
        {
            problems.Add("the p2p store directory is required");
        }

        if (TestFault is not null && TestFault != "corrupt" && !TestFault.StartsWith("hold:", StringComparison.Ordinal))
        {
            problems.Add($"test fault \"{TestFault}\" is not corrupt or hold:PATH");
        }

        return problems;
    }
}
