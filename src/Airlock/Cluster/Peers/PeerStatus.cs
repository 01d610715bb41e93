using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;

namespace Airlock.Cluster.Peers;

/// <summary>A peer as this node sees it (<c>airlock p2p status</c>).</summary>
public sealed record PeerState
{
    public required string Name { get; init; }

    /// <summary>Its peer mirror, null when it runs none.</summary>
    public string? Endpoint { get; init; }

    /// <summary><c>ready</c>, <c>down</c> (failed lately, skipped for a while), <c>not-ready</c> (missed heartbeats), <c>no-p2p</c>.</summary>
    public required string State { get; init; }

    /// <summary>How many blobs it advertises holding.</summary>
    public int Holds { get; init; }

    /// <summary>How many blobs it advertises receiving now.</summary>
    public int Receiving { get; init; }
}

/// <summary>What <c>airlock p2p status</c> prints: this node's peer mirror, its peers, and where its blobs came from.</summary>
public sealed record PeerStatus
{
    /// <summary>Where the node mirror answers it (loopback, plain HTTP).</summary>
    public const string Path = "/p2p/status";

    public required string Node { get; init; }

    public required string Endpoint { get; init; }

    public int Holds { get; init; }

    public int Receiving { get; init; }

    /// <summary>When the peer list was last read from the server; null when it never was.</summary>
    public DateTimeOffset? PeersRead { get; init; }

    public IReadOnlyList<PeerState> Peers { get; init; } = [];

    public long BlobsFromPeers { get; init; }

    public long BlobsFromRegistry { get; init; }

    public long BlobsFromStore { get; init; }

    public long BytesFromPeers { get; init; }

    public long BytesFromRegistry { get; init; }

    public long BytesServedToPeers { get; init; }

    public long PeerErrors { get; init; }

    public long PeerRequestsRefused { get; init; }

    /// <summary>Blobs that did not come from the registry (peers or this node's store) over all blobs served to containerd; null before any.</summary>
    public double? HitRatio { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PeerStatus))]
public sealed partial class PeerJson : JsonSerializerContext;

/// <summary>The peer mirror's counters, rendered for <c>/metrics</c> and the status.</summary>
internal sealed class PeerCounters
{
    private long _blobsFromPeers;
    private long _blobsFromRegistry;
    private long _localHits;
    private long _bytesFromPeers;
    private long _bytesFromRegistry;
    private long _bytesServed;
    private long _peerErrors;
    private long _refused;

    public void Received(bool fromRegistry, long bytes)
    {
        if (fromRegistry)
        {
            Interlocked.Increment(ref _blobsFromRegistry);
            Interlocked.Add(ref _bytesFromRegistry, bytes);
        }
        else
        {
            Interlocked.Increment(ref _blobsFromPeers);
            Interlocked.Add(ref _bytesFromPeers, bytes);
        }
    }

    public void LocalHit() => Interlocked.Increment(ref _localHits);

    public void Served(long bytes) => Interlocked.Add(ref _bytesServed, bytes);

    public void PeerError() => Interlocked.Increment(ref _peerErrors);

    public void Refused() => Interlocked.Increment(ref _refused);

    public PeerStatus Snapshot(string node, string endpoint, int holds, int receiving, DateTimeOffset? peersRead, IReadOnlyList<PeerState> peers)
    {
        var fromPeers = Interlocked.Read(ref _blobsFromPeers);
        var fromRegistry = Interlocked.Read(ref _blobsFromRegistry);
        var local = Interlocked.Read(ref _localHits);
        var total = fromPeers + fromRegistry + local;
        return new PeerStatus
        {
            Node = node,
            Endpoint = endpoint,
            Holds = holds,
            Receiving = receiving,
            PeersRead = peersRead,
            Peers = peers,
            BlobsFromPeers = fromPeers,
            BlobsFromRegistry = fromRegistry,
            BlobsFromStore = local,
            BytesFromPeers = Interlocked.Read(ref _bytesFromPeers),
            BytesFromRegistry = Interlocked.Read(ref _bytesFromRegistry),
            BytesServedToPeers = Interlocked.Read(ref _bytesServed),
            PeerErrors = Interlocked.Read(ref _peerErrors),
            PeerRequestsRefused = Interlocked.Read(ref _refused),
            HitRatio = total == 0 ? null : (double)(fromPeers + local) / total,
        };
    }

    public string Render()
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder(1024);
        Counter("airlock_p2p_bytes_from_peers_total", "Bytes of blobs received from peers (verified).", _bytesFromPeers);
        Counter("airlock_p2p_bytes_from_registry_total", "Bytes of blobs of shared registries received from the registry.", _bytesFromRegistry);
        Counter("airlock_p2p_bytes_served_to_peers_total", "Bytes of blobs sent to peers.", _bytesServed);
        Counter("airlock_p2p_blobs_from_peers_total", "Blobs received from peers.", _blobsFromPeers);
        Counter("airlock_p2p_blobs_from_registry_total", "Blobs of shared registries received from the registry.", _blobsFromRegistry);
        Counter("airlock_p2p_blobs_from_store_total", "Blob requests of containerd served from this node's p2p store.", _localHits);
        Counter("airlock_p2p_peer_errors_total", "Peers that failed to deliver a blob (unreachable, timed out, wrong bytes, refused).", _peerErrors);
        Counter("airlock_p2p_peer_requests_refused_total", "Peer requests refused (not a member, or no credentials for a private registry).", _refused);
        return text.ToString();

        void Counter(string name, string help, long value)
        {
            text.Append(c, $"# HELP {name} {help}\n# TYPE {name} counter\n{name} {Interlocked.Read(ref value)}\n");
        }
    }
}

/// <summary>
/// The body a peer gets: bytes counted as served to peers; and, only when a test sets one, a fault — a flipped byte
/// (<c>corrupt</c>), or half the body and then silence (<c>hold:PATH</c>, PATH created when it holds).
/// </summary>
internal sealed class PeerResponseStream(Stream inner, PeerCounters counters, string? fault) : Stream
{
    private long _written;
    private bool _held;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _written; set => throw new NotSupportedException(); }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (fault == "corrupt" && buffer.Length > 0)
        {
            var copy = buffer.ToArray();
            copy[copy.Length / 2] ^= 0xFF;
            buffer = copy;
        }
        else if (fault is not null && fault.StartsWith("hold:", StringComparison.Ordinal) && !_held && _written > 0)
        {
            // The first write went out in full; from the second on nothing more is sent: "mid-transfer", deterministically.
            await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
            _held = true;
            await File.WriteAllTextAsync(fault[5..], _written.ToString(CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        }

        await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _written += buffer.Length;
        counters.Served(buffer.Length);
    }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
