using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Airlock.Cluster.Join;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Distribution;
using Airlock.Hosting;
using Airlock.Node;
using Airlock.Node.Mirror;
using Airlock.Oci;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Cluster.Peers;

/// <summary>
/// A node's peer-to-peer mirror (<c>airlock agent --embedded-registry</c>), the blob source of its node mirror:
/// <list type="bullet">
/// <item>containerd's blob requests for shared registries (<see cref="RegistryEndpoints.IsPeerShared"/>) are served
/// from this node's p2p store, else from a transfer into it whose sources are peers that hold or receive the blob,
/// then the peer rendezvous hashing ranks first for the digest, then the registry — each peer bounded by
/// <see cref="PeerMirrorOptions.PeerTimeout"/>;</item>
/// <item>bytes from a peer reach containerd only once the whole blob matched its digest; bytes from the registry are
/// passed on as they arrive (containerd verifies them, as without peers), the last held back until verified;</item>
/// <item>peers are served over mutual TLS (cluster certificates, current members only) from the store or a transfer
/// still arriving; a peer that asks for a blob nobody has yet makes this node fetch it from the registry — the one
/// download the others then read while it arrives;</item>
/// <item>what the store holds and what is arriving is advertised with every heartbeat; the peer list comes from
/// the server's membership.</item>
/// </list>
/// </summary>
public sealed partial class PeerMirror : IMirrorBlobSource, IAsyncDisposable
{
    /// <summary>Most (blob, registry) pairs remembered as readable at the registry (a HEAD each, asked again when forgotten).</summary>
    private const int MaxConfirmed = 100_000;

    /// <summary>Most tags kept for peers' lookups (descriptors only, ~200 bytes each).</summary>
    private const int MaxTags = 10_000;

    private readonly ClusterMember _member;
    private readonly PeerMirrorOptions _options;
    private readonly IRegistryStore _storage;
    private readonly ConcurrentDictionary<Digest, byte> _held = new();
    private readonly PeerClient _client;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Digest, PeerTransfer> _transfers = new();
    private BlobOrigins? _origins;
    private ContainerdHoldings? _holdings;
    private Task _scanning = Task.CompletedTask;
    private readonly ConcurrentDictionary<(Digest Digest, string Registry), byte> _confirmed = new();
    private HashSet<Digest> _dropAtNextScan = [];
    private readonly ConcurrentDictionary<(string Registry, string Repository, string Tag), MirrorTag> _tags = new();
    private readonly ConcurrentDictionary<string, long> _downUntil = new(StringComparer.Ordinal);
    private readonly PeerCounters _counters = new();
    private readonly SemaphoreSlim _memberRead = new(1, 1);
    private KestrelHost? _host;
    private Task _refreshing = Task.CompletedTask;
    private IMirrorRegistryAccess? _registries;
    private volatile IReadOnlyList<ClusterNode> _members = [];
    private DateTimeOffset? _membersRead;
    private long _readsOnDemand;

    private PeerMirror(ClusterMember member, PeerMirrorOptions options, IRegistryStore storage, ILogger logger)
    {
        _member = member;
        _options = options;
        _storage = storage;
        _logger = logger;
        _client = new PeerClient(() => member.Credentials, options);
    }

    /// <summary>Where peers reach this node (<c>host:port</c>), once listening.</summary>
    public string Endpoint { get; private set; } = string.Empty;

    /// <summary>
    /// Opens the store, listens for peers (mutual TLS with <paramref name="member"/>'s certificates) and starts reading the
    /// peer list. Give it to the node mirror as <see cref="MirrorOptions.BlobSource"/>, and <see cref="Advertise"/> to the
    /// membership's heartbeats.
    /// </summary>
    public static async Task<PeerMirror> StartAsync(ClusterMember member, PeerMirrorOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(member);
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", problems), nameof(options));
        }

        var logger = options.LoggerFactory.CreateLogger("Airlock.Cluster.Peers");
        Directory.CreateDirectory(options.StoreDirectory, Airlock.IO.DirectoryOwner.Private);
        var storage = FileSystemRegistryStore.Open(options.StoreDirectory, options.Time, logger);
        var mirror = new PeerMirror(member, options, storage, logger);
        try
        {
            // What the store holds is kept in memory from here on: heartbeats advertise it without listing the store.
            await foreach (var blob in storage.Blobs.ListAsync(cancellationToken).ConfigureAwait(false))
            {
                mirror._held[blob.Digest] = 0;
            }

            // Blobs fetched before a restart are served to peers again at once, under the registry each came from.
            mirror._origins = BlobOrigins.Open(options.StoreDirectory, mirror._held.ContainsKey);
            if (options.ContainerdSocket is { } socket)
            {
                mirror._holdings = ContainerdHoldings.Connect(socket, options.ContainerdNamespace);
            }

            await mirror.ListenAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await mirror.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        mirror._refreshing = mirror.RefreshAsync(mirror._stopping.Token);
        mirror._scanning = mirror._holdings is null ? Task.CompletedTask : mirror.ScanContainerdAsync(mirror._holdings, mirror._stopping.Token);
        LogListening(logger, mirror.Endpoint, options.StoreDirectory);
        return mirror;
    }

    /// <summary>What this node's heartbeats carry: its endpoint, the blobs it holds and receives, its credentialed registries.</summary>
    public NodeAdvertisement Advertise()
    {
        var receiving = _transfers.Keys.Select(d => d.ToString()).ToList();
        var holds = Holdings().Select(d => d.ToString()).Take(NodeAdvertisement.MaxDigests - receiving.Count).ToList();
        return new NodeAdvertisement
        {
            PeerEndpoint = Endpoint,
            Holds = holds,
            Receiving = receiving,
            CredentialedRegistries = _registries is { } access ? CredentialedRegistries(access.Registries) : [],
        };
    }

    /// <summary>What this node can give peers: the p2p store and containerd's labelled content.</summary>
    private IEnumerable<Digest> Holdings() => _holdings is null ? _held.Keys : _held.Keys.Union(_holdings.Digests);

    void IMirrorBlobSource.Attach(IMirrorRegistryAccess registries) => Volatile.Write(ref _registries, registries);

    bool IMirrorBlobSource.Shares(RegistriesFile registries, string registry) => RegistryEndpoints.IsPeerShared(registries, registry);

    /// <summary>What the registry answered for a tag, kept (in memory, the latest per tag) for peers that resolve tags through this node.</summary>
    void IMirrorBlobSource.TagResolved(MirrorTag tag)
    {
        if (_tags.Count >= MaxTags && !_tags.ContainsKey((tag.Registry, tag.Repository, tag.Tag)))
        {
            // Bounded: an arbitrary old entry makes room (a peer then answers 404 for it and the asker asks the registry).
            foreach (var key in _tags.Keys.Take(_tags.Count - MaxTags + 1))
            {
                _tags.TryRemove(key, out _);
            }
        }

        _tags[(tag.Registry, tag.Repository, tag.Tag)] = tag;
    }

    /// <summary>
    /// With <see cref="PeerMirrorOptions.ShareTags"/>: every live peer is asked at once (HEAD, bounded by the peer timeout), the
    /// first that knows the tag answers; null (the registry is asked) when none does in time, or without the flag.
    /// </summary>
    async Task<MirrorTag?> IMirrorBlobSource.ResolveTagAsync(string registry, string repository, string tag, CancellationToken cancellationToken)
    {
        if (!_options.ShareTags)
        {
            return null;
        }

        var peers = LivePeers().Values.Select(m => new PeerSource(m.Name, m.Advertises!.PeerEndpoint)).ToList();
        if (peers.Count == 0)
        {
            return null;
        }

        using var asking = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        var pending = peers.ToDictionary(p => _client.ResolveTagAsync(p.Endpoint!, registry, repository, tag, asking.Token), p => p);
        try
        {
            while (pending.Count > 0)
            {
                var done = await Task.WhenAny(pending.Keys).ConfigureAwait(false);
                var peer = pending[done];
                pending.Remove(done);
                if (done.IsCompletedSuccessfully && done.Result is { } found)
                {
                    LogTagFromPeer(_logger, registry, repository, tag, peer.Name, found.Digest);
                    return found;
                }

                if (done.Exception?.GetBaseException() is { } error && !cancellationToken.IsCancellationRequested)
                {
                    _counters.PeerError();
                    LogTagPeerFailed(_logger, registry, repository, tag, peer.Name, error.Message);
                }
            }
        }
        finally
        {
            await asking.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(pending.Keys.Cast<Task>()).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        cancellationToken.ThrowIfCancellationRequested();
        return null;
    }

    /// <summary>containerd's request, through the node mirror.</summary>
    async Task IMirrorBlobSource.ServeBlobAsync(HttpContext context, MirrorBlobRequest request)
    {
        var ct = context.RequestAborted;
        if (await ServeStoredAsync(context, request.Digest, request.Head, ranged: true).ConfigureAwait(false))
        {
            _counters.LocalHit();
            return;
        }

        var transfer = Transfer(request.Registry, request.Repository, request.Digest, askPeers: true);
        var registryAttempt = transfer.RegistryAttempt;
        await Task.WhenAny(transfer.Completion, registryAttempt).WaitAsync(ct).ConfigureAwait(false);
        if (!transfer.Completion.IsCompleted && registryAttempt.IsCompletedSuccessfully && !request.Head
            && context.Request.Headers.Range.Count == 0 && registryAttempt.Result.Fetch.IsReadable)
        {
            // From the registry: passed on as it arrives, as without peers (the last buffer only once verified).
            await ServeGrowingAsync(context, registryAttempt.Result.Fetch, transfer, context.Response.Body).ConfigureAwait(false);
            return;
        }

        try
        {
            await transfer.Completion.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            throw new OciException(OciErrorCode.UpstreamUnavailable, ex.Message);
        }

        if (!await ServeStoredAsync(context, request.Digest, request.Head, ranged: true).ConfigureAwait(false))
        {
            throw new OciException(OciErrorCode.BlobUnknown, $"blob {request.Digest} vanished from the p2p store right after it was stored");
        }
    }

    async Task<bool> IMirrorBlobSource.TryServeOtherAsync(HttpContext context)
    {
        var path = context.Request.Path.Value;
        if (path == "/metrics")
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await context.Response.WriteAsync(_counters.Render(), context.RequestAborted).ConfigureAwait(false);
            return true;
        }

        if (path == PeerStatus.Path)
        {
            context.Response.ContentType = "application/json";
            await JsonSerializer.SerializeAsync(context.Response.Body, Status(), PeerJson.Default.PeerStatus, context.RequestAborted).ConfigureAwait(false);
            return true;
        }

        return false;
    }

    /// <summary>This node's view: its peers and their state, what it holds and receives, and the counters.</summary>
    public PeerStatus Status()
    {
        var now = _options.Time.GetTimestamp();
        var peers = _members.Where(m => m.Name != _member.NodeName).Select(m => new PeerState
        {
            Name = m.Name,
            Endpoint = m.Advertises?.PeerEndpoint,
            State = m.Advertises?.PeerEndpoint is null ? "no-p2p"
                : m.Status != NodeStatus.Ready ? "not-ready"
                : _downUntil.TryGetValue(m.Advertises.PeerEndpoint, out var until) && until > now ? "down"
                : "ready",
            Holds = m.Advertises?.Holds.Count ?? 0,
            Receiving = m.Advertises?.Receiving.Count ?? 0,
        }).OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        return _counters.Snapshot(_member.NodeName, Endpoint, Holdings().Count(), _transfers.Count, _membersRead, peers);
    }

    private async Task ListenAsync(CancellationToken cancellationToken)
    {
        _host = await KestrelHost.StartAsync(new KestrelHostOptions
        {
            Listen = _options.Listen,

            // The current certificates at every handshake: a renewal takes effect without a restart.
            TlsPerConnection = () => _member.Credentials.CreateServerOptions(_options.Time),
            Http1Only = true,
            MaxResponseBufferSize = 2 << 20,
            ShutdownTimeout = TimeSpan.FromSeconds(2),
            LoggerFactory = _options.LoggerFactory,
        }, HandlePeerAsync, cancellationToken).ConfigureAwait(false);
        var bound = _host.Address;
        var host = _options.Listen.Address.Equals(IPAddress.Any) || _options.Listen.Address.Equals(IPAddress.IPv6Any)
            ? _member.Addresses.FirstOrDefault()?.ToString() ?? bound.Host
            : _options.Listen.Address.ToString();
        Endpoint = (host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host) + ":" + bound.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A peer's request: only blobs, by digest, of registries this node shares, to current members allowed to have them.</summary>
    private async Task HandlePeerAsync(HttpContext context)
    {
        try
        {
            await ServePeerAsync(context).ConfigureAwait(false);
        }
        catch (OciException ex) when (!context.Response.HasStarted)
        {
            await OciErrorTable.WriteAsync(context, ex).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException && context.RequestAborted.IsCancellationRequested)
        {
        }
    }

    private async Task ServePeerAsync(HttpContext context)
    {
        var certificate = context.Connection.ClientCertificate;
        var peer = certificate is null ? null : NodeCertificates.NodeNameOf(certificate);
        var member = peer is null ? null : await FindMemberAsync(peer, context.RequestAborted).ConfigureAwait(false);
        if (member is null)
        {
            _counters.Refused();
            throw new OciException(OciErrorCode.Denied,
                peer is null ? "peers present a node's client certificate" : $"node {peer} is not a current member of the cluster");
        }

        var head = HttpMethods.IsHead(context.Request.Method);
        if (!head && !HttpMethods.IsGet(context.Request.Method))
        {
            throw new OciException(OciErrorCode.MethodNotAllowed, "peers serve blobs to read only");
        }

        if (!OciRoute.TryParse(context.Request.Path.Value ?? "/", out var route)
            || route is not ({ Kind: OciRouteKind.Blob, Digest: not null } or { Tag: not null }) || (route.Tag is not null && !head))
        {
            throw new OciException(OciErrorCode.Unsupported,
                "peers serve blobs by digest, and resolve tags (HEAD of a manifest by tag): manifests themselves come from the registry");
        }

        var registry = context.Request.Query["ns"].ToString();
        var access = Volatile.Read(ref _registries) ?? throw new OciException(OciErrorCode.UpstreamUnavailable, "this node's mirror is not serving yet");
        var registries = access.Registries;
        if (registry.Length == 0 || !RegistryEndpoints.IsPeerShared(registries, registry))
        {
            throw new OciException(OciErrorCode.BlobUnknown, $"registry \"{registry}\" is not shared by this node (not under mirrors in its registries.yaml)");
        }

        if (NeedsCredentials(registries, registry) && !(member.Advertises?.CredentialedRegistries.Contains(registry, StringComparer.OrdinalIgnoreCase) ?? false))
        {
            _counters.Refused();
            LogRefusedPrivate(_logger, peer!, registry, route.Reference);
            throw new OciException(OciErrorCode.Denied,
                $"{registry} needs credentials and node {peer}'s registries.yaml has none for it: its content is served only to nodes that could pull it themselves");
        }

        if (route.Tag is { } tag)
        {
            if (!_tags.TryGetValue((registry, route.Name, tag), out var known))
            {
                throw new OciException(OciErrorCode.ManifestUnknown, $"this node has not resolved {registry}/{route.Name}:{tag}");
            }

            context.Response.Headers[RegistryHeaders.ContentDigest] = known.Digest.ToString();
            context.Response.ContentType = known.MediaType;
            context.Response.ContentLength = known.Size;
            return;
        }

        var digest = route.Digest!.Value;

        // Content is shared by digest, but only as coming from the registry it was fetched from: a digest of a private
        // registry is not handed out under the name of another one.
        if (_origins?.Contains(digest, registry) == true
            && await ServeStoredAsync(context, digest, head, ranged: false, Fault(context.Response.Body)).ConfigureAwait(false))
        {
            return;
        }

        if (await ServeFromContainerdAsync(context, registry, route.Name, digest, head).ConfigureAwait(false))
        {
            return;
        }

        if (await _storage.Blobs.SizeAsync(digest, context.RequestAborted).ConfigureAwait(false) is not null)
        {
            throw new OciException(OciErrorCode.BlobUnknown, $"blob {digest} is not held for {registry}");
        }

        // Not here yet: the transfer already under way, or this node fetches it from the registry for the cluster.
        var transfer = Transfer(registry, route.Name, digest, askPeers: false);
        if (transfer.Registry != registry)
        {
            throw new OciException(OciErrorCode.BlobUnknown, $"blob {digest} is arriving for another registry");
        }

        while (!transfer.Completion.IsCompleted)
        {
            if (transfer.Current is { } attempt && attempt.Fetch.IsReadable && !head)
            {
                await ServeGrowingAsync(context, attempt.Fetch, transfer, Fault(context.Response.Body)).ConfigureAwait(false);
                return;
            }

            await Task.WhenAny(transfer.Completion, Task.Delay(TimeSpan.FromMilliseconds(20), _options.Time, context.RequestAborted)).ConfigureAwait(false);
        }

        try
        {
            await transfer.Completion.ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            throw new OciException(OciErrorCode.BlobUnknown, ex.Message);
        }

        await ServeStoredAsync(context, digest, head, ranged: false, Fault(context.Response.Body)).ConfigureAwait(false);
    }

    /// <summary>The running transfer of the digest, or a new one with its sources planned now.</summary>
    private PeerTransfer Transfer(string registry, string repository, Digest digest, bool askPeers)
    {
        while (true)
        {
            if (_transfers.TryGetValue(digest, out var running))
            {
                return running;
            }

            var transfer = new PeerTransfer(digest, registry, repository);
            if (!_transfers.TryAdd(digest, transfer))
            {
                continue;
            }

            var plan = askPeers ? Plan(registry, digest) : [PeerSource.Registry];
            LogPlan(_logger, digest, registry, repository, string.Join(" → ", plan));
            _ = Task.Run(async () =>
            {
                try
                {
                    await transfer.RunAsync(_storage, plan, (source, ct) => OpenAsync(transfer, source, ct), Failed, _stopping.Token).ConfigureAwait(false);
                    if (transfer.Completion.IsCompletedSuccessfully)
                    {
                        _origins?.Add(digest, registry);
                        _held[digest] = 0;
                        var size = await _storage.Blobs.SizeAsync(digest, CancellationToken.None).ConfigureAwait(false) ?? 0;
                        _counters.Received(transfer.Completion.Result.IsRegistry, size);
                    }
                }
                finally
                {
                    _transfers.TryRemove(KeyValuePair.Create(digest, transfer));
                }
            });
            return transfer;
        }

        void Failed(PeerSource source, Exception error)
        {
            if (source.IsRegistry)
            {
                LogRegistryFailed(_logger, digest, registry, error.Message);
                return;
            }

            _counters.PeerError();
            if (_options.DownFor > TimeSpan.Zero)
            {
                _downUntil[source.Endpoint!] = _options.Time.GetTimestamp() + (long)(_options.DownFor.TotalSeconds * _options.Time.TimestampFrequency);
            }

            LogPeerFailed(_logger, digest, source.Name, source.Endpoint!, error.Message);
        }
    }

    private Task<Stream> OpenAsync(PeerTransfer transfer, PeerSource source, CancellationToken cancellationToken)
    {
        if (source.IsRegistry)
        {
            var access = Volatile.Read(ref _registries) ?? throw new OciException(OciErrorCode.UpstreamUnavailable, "the node mirror is not serving yet");
            return access.OpenBlobAsync(transfer.Registry, transfer.Repository, transfer.Digest, cancellationToken);
        }

        return _client.OpenBlobAsync(source.Endpoint!, transfer.Registry, transfer.Repository, transfer.Digest, cancellationToken);
    }

    /// <summary>The sources for a blob containerd wants: the peers <see cref="PeersToAsk"/> names, none recently failed; the registry last.</summary>
    private List<PeerSource> Plan(string registry, Digest digest)
    {
        var live = LivePeers();
        var plan = PeersToAsk(digest, _member.NodeName, live.ToDictionary(p => p.Key, p => p.Value.Advertises!, StringComparer.Ordinal), _options.MaxPeersPerBlob)
            .Select(n => new PeerSource(n, live[n].Advertises!.PeerEndpoint)).ToList();
        plan.Add(PeerSource.Registry);
        return plan;
    }

    /// <summary>
    /// The peers to ask for <paramref name="digest"/>, best first, at most <paramref name="max"/>: those that hold it, then
    /// those receiving it that rendezvous hashing ranks above this node, then the node it ranks first among the live ones
    /// and this one (when that is this node, it is the one that fetches from the registry).
    /// </summary>
    /// <remarks>
    /// A peer receiving a blob may itself be waiting for another peer, so receiving peers are followed only up the ranking:
    /// every wait then goes from a node to a higher-ranked one and waits can never form a cycle. Following any receiving
    /// peer let the node ranked first wait for a node that was waiting for it, until both gave up at the peer bound and
    /// fetched from the registry (an interop run sent 1.5× the image instead of about 1×).
    /// </remarks>
    internal static List<string> PeersToAsk(Digest digest, string self, IReadOnlyDictionary<string, NodeAdvertisement> live, int max)
    {
        var text = digest.ToString();
        var ranked = Rendezvous.Order(digest, live.Keys.Append(self));
        var above = ranked.TakeWhile(n => n != self).ToList();
        var chosen = new List<string>();
        chosen.AddRange(ranked.Where(n => live.TryGetValue(n, out var m) && m.Holds.Contains(text, StringComparer.Ordinal)));
        chosen.AddRange(above.Where(n => live[n].Receiving.Contains(text, StringComparer.Ordinal)));
        if (above.Count > 0)
        {
            chosen.Add(above[0]);
        }

        return chosen.Distinct(StringComparer.Ordinal).Take(max).ToList();
    }

    /// <summary>The other members that are Ready, advertise a peer endpoint and have not failed lately, by name.</summary>
    private Dictionary<string, ClusterNode> LivePeers()
    {
        var now = _options.Time.GetTimestamp();
        return _members
            .Where(m => m.Status == NodeStatus.Ready && m.Name != _member.NodeName && m.Advertises?.PeerEndpoint is { Length: > 0 } endpoint
                && !(_downUntil.TryGetValue(endpoint, out var until) && until > now))
            .ToDictionary(m => m.Name, StringComparer.Ordinal);
    }

    /// <summary>Serves the stored blob (whole, or from a <c>bytes=N-</c> range); false when the store does not have it.</summary>
    private async Task<bool> ServeStoredAsync(HttpContext context, Digest digest, bool head, bool ranged, Stream? body = null)
    {
        var ct = context.RequestAborted;
        if (await _storage.Blobs.SizeAsync(digest, ct).ConfigureAwait(false) is not { } size || _storage.Blobs.LocalPath(digest) is not { } path)
        {
            return false;
        }

        long offset = 0;
        var response = context.Response;
        if (ranged && TryStart(context.Request.Headers.Range.ToString(), size, out var start))
        {
            offset = start;
            response.StatusCode = StatusCodes.Status206PartialContent;
            response.Headers.ContentRange = $"bytes {start}-{size - 1}/{size}";
        }

        WriteHeaders(response, digest, size - offset);
        if (head)
        {
            return true;
        }

        try
        {
            if (body is null)
            {
                await response.SendFileAsync(path, offset, size - offset, ct).ConfigureAwait(false);
                return true;
            }

            var file = File.OpenRead(path);
            await using (file.ConfigureAwait(false))
            {
                await file.CopyToAsync(body, 1 << 20, ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException && !response.HasStarted)
        {
            // Dropped from the store (containerd holds it now) between the size check and the open: not here after all.
            response.Clear();
            return false;
        }

        return true;
    }

    /// <summary>
    /// Serves a blob containerd's content store holds, labelled as coming from <paramref name="registry"/>'s host, to a peer;
    /// false when it does not hold it so. The label does not say which credentials the pull used (a pod's pull secret may
    /// have fetched it), so unless this node fetched the blob from that registry itself, the registry is asked first (a
    /// HEAD with this node's registries.yaml credentials) whether this node may read it — as it would be for the p2p store.
    /// </summary>
    private async Task<bool> ServeFromContainerdAsync(HttpContext context, string registry, string repository, Digest digest, bool head)
    {
        var ct = context.RequestAborted;
        if (_holdings is null || !_holdings.Holds(digest, registry))
        {
            return false;
        }

        if (_origins?.Contains(digest, registry) != true && !_confirmed.ContainsKey((digest, registry)))
        {
            var access = Volatile.Read(ref _registries) ?? throw new OciException(OciErrorCode.UpstreamUnavailable, "this node's mirror is not serving yet");
            if (!await access.CanReadBlobAsync(registry, repository, digest, ct).ConfigureAwait(false))
            {
                LogNotConfirmed(_logger, digest, registry, repository);
                return false;
            }

            if (_confirmed.Count >= MaxConfirmed)
            {
                _confirmed.Clear();
            }

            _confirmed[(digest, registry)] = 0;
        }

        if (await _holdings.SizeAsync(digest, registry, ct).ConfigureAwait(false) is not { } size)
        {
            return false;
        }

        WriteHeaders(context.Response, digest, size);
        if (head)
        {
            return true;
        }

        var content = _holdings.Open(digest, ct);
        await using (content.ConfigureAwait(false))
        {
            try
            {
                await content.CopyToAsync(Fault(context.Response.Body), 1 << 20, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                // The body is under way: only cutting the connection tells the peer it is not the blob.
                LogServeBroken(_logger, digest, ex.Message);
                context.Abort();
            }
        }

        return true;
    }

    /// <summary>Serves a download while it arrives; the response is cut (never completed) if it fails.</summary>
    private async Task ServeGrowingAsync(HttpContext context, Registry.PullThrough.BlobFetch fetch, PeerTransfer transfer, Stream body)
    {
        var ct = context.RequestAborted;
        long size;
        try
        {
            size = await fetch.Size.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw new OciException(OciErrorCode.UpstreamUnavailable, $"blob {transfer.Digest}: {ex.Message}");
        }

        WriteHeaders(context.Response, transfer.Digest, size);
        try
        {
            var served = await fetch.ServeAsync(null, body, size, ct).ConfigureAwait(false);
            if (served < size)
            {
                await fetch.Completion.WaitAsync(ct).ConfigureAwait(false);
                var path = _storage.Blobs.LocalPath(transfer.Digest) ?? throw new IOException($"blob {transfer.Digest} is not in the store after its download");
                var file = File.OpenRead(path);
                await using (file.ConfigureAwait(false))
                {
                    file.Seek(served, SeekOrigin.Begin);
                    await file.CopyToAsync(body, 1 << 20, ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            // The body is under way: only cutting the connection tells the reader it is not the blob.
            LogServeBroken(_logger, transfer.Digest, ex.Message);
            context.Abort();
        }
    }

    private static bool TryStart(string range, long size, out long start)
    {
        start = 0;
        if (!range.StartsWith("bytes=", StringComparison.Ordinal) || !range.EndsWith('-'))
        {
            return false;
        }

        return long.TryParse(range.AsSpan(6, range.Length - 7), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out start)
            && start > 0 && start < size;
    }

    private static void WriteHeaders(HttpResponse response, Digest digest, long length)
    {
        response.Headers[RegistryHeaders.ContentDigest] = digest.ToString();
        response.Headers[RegistryHeaders.ApiVersion] = RegistryHeaders.ApiVersionValue;
        response.ContentType = "application/octet-stream";
        response.ContentLength = length;
    }

    /// <summary>The response body peers get: counted, and with a test fault when one is set.</summary>
    private Stream Fault(Stream body) => new PeerResponseStream(body, _counters, _options.TestFault);

    /// <summary>Registries whose endpoints need credentials that this node's registries.yaml has (what it advertises).</summary>
    private static List<string> CredentialedRegistries(RegistriesFile registries) =>
        registries.Mirrors.Select(m => m.Key).Concat(registries.Configs.Select(c => c.Key))
            .Where(key => key != RegistriesFile.Wildcard && NeedsCredentials(registries, key))
            .Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal).ToList();

    /// <summary>A registry needs credentials when any endpoint this node would pull it from has them in registries.yaml.</summary>
    private static bool NeedsCredentials(RegistriesFile registries, string registry) =>
        new RegistryEndpoints(registries, disableDefaultEndpoint: false).Resolve(registry).Any(e => e.Auth is not null);

    /// <summary>
    /// The member <paramref name="name"/> (a peer's client certificate, already checked against the cluster CA), reading
    /// the member list again when it is not in the last one: a node that joined since the last periodic read is served at
    /// once instead of refused for up to the refresh interval — it sees its peers as soon as it joined, and asks them
    /// at once. Reads on demand go one at a time, and requests that wait behind one share it; a node that is no longer a
    /// member (its certificate still valid) costs the server one list read per request, never more than one at a time.
    /// </summary>
    private async ValueTask<ClusterNode?> FindMemberAsync(string name, CancellationToken cancellationToken)
    {
        if (_members.FirstOrDefault(m => m.Name == name) is { } known)
        {
            return known;
        }

        var readsBefore = Interlocked.Read(ref _readsOnDemand);
        await _memberRead.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // A read on demand that started after this request arrived has finished (it held the gate): it is this one's.
            if (Interlocked.Read(ref _readsOnDemand) == readsBefore && !_members.Any(m => m.Name == name))
            {
                Interlocked.Increment(ref _readsOnDemand);
                await ReadMembersAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogRefreshFailed(_logger, ex.Message);
        }
        finally
        {
            _memberRead.Release();
        }

        return _members.FirstOrDefault(m => m.Name == name);
    }

    private async Task ReadMembersAsync(CancellationToken cancellationToken)
    {
        _members = await _member.ListNodesAsync(cancellationToken).ConfigureAwait(false);
        _membersRead = _options.Time.GetUtcNow();
    }

    /// <summary>Reads the peer list every refresh interval; a failed read keeps the last one (peers that died fail fast and are skipped).</summary>
    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.RefreshInterval, _options.Time);
        do
        {
            try
            {
                await ReadMembersAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogRefreshFailed(_logger, ex.Message);
            }
        }
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Lists containerd's content every scan interval, then drops from the p2p store what containerd now holds.</summary>
    private async Task ScanContainerdAsync(ContainerdHoldings holdings, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.ContentScanInterval, _options.Time);
        do
        {
            try
            {
                await holdings.ScanAsync(cancellationToken).ConfigureAwait(false);
                await DropHeldByContainerdAsync(holdings, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogScanFailed(_logger, ex.Message);
            }
        }
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// The p2p store is where blobs arrive, not a second copy to keep: once containerd holds a blob, labelled for the
    /// registry it was fetched from, peers are served from containerd and the store's copy is deleted. A blob is dropped
    /// only when two scans in a row saw it so and no transfer of it is running, so a peer that just read its size from the
    /// store finds the file (or, in the rare case it does not, is served from containerd).
    /// </summary>
    private async Task DropHeldByContainerdAsync(ContainerdHoldings holdings, CancellationToken cancellationToken)
    {
        var origins = _origins?.Snapshot() ?? [];
        var candidates = _held.Keys
            .Where(d => !_transfers.ContainsKey(d) && origins.TryGetValue(d, out var registries) && registries.Any(r => holdings.Holds(d, r)))
            .ToHashSet();
        var drop = candidates.Where(_dropAtNextScan.Contains).ToList();
        _dropAtNextScan = candidates;
        foreach (var digest in drop)
        {
            if (_transfers.ContainsKey(digest))
            {
                continue;
            }

            _held.TryRemove(digest, out _);
            await _storage.Blobs.DeleteAsync(digest, cancellationToken).ConfigureAwait(false);
            LogDropped(_logger, digest);
        }
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _refreshing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _scanning.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_holdings is not null)
        {
            await _holdings.DisposeAsync().ConfigureAwait(false);
        }

        if (_host is not null)
        {
            await _host.DisposeAsync().ConfigureAwait(false);
        }

        var running = _transfers.Values.Select(t => (Task)t.Completion).ToArray();
        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _client.Dispose();
        _origins?.Dispose();
        await _storage.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
        _memberRead.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Peer-to-peer mirror listening on {Endpoint} (mutual TLS, cluster members only); blobs in {Directory}")]
    private static partial void LogListening(ILogger logger, string endpoint, string directory);

    [LoggerMessage(Level = LogLevel.Information, Message = "Blob {Digest} of {Registry}/{Repository}: trying {Order}")]
    private static partial void LogPlan(ILogger logger, Digest digest, string registry, string repository, string order);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Blob {Digest}: peer {Peer} ({Endpoint}) failed, trying the next source: {Reason}")]
    private static partial void LogPeerFailed(ILogger logger, Digest digest, string peer, string endpoint, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Blob {Digest} of {Registry}: the registry failed: {Reason}")]
    private static partial void LogRegistryFailed(ILogger logger, Digest digest, string registry, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Blob {Digest}: a transfer in progress failed, the response was cut: {Reason}")]
    private static partial void LogServeBroken(ILogger logger, Digest digest, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Reference} of {Registry} to node {Peer}: the registry needs credentials its registries.yaml does not have")]
    private static partial void LogRefusedPrivate(ILogger logger, string peer, string registry, string reference);

    [LoggerMessage(Level = LogLevel.Information, Message = "Tag {Registry}/{Repository}:{Tag} resolved by peer {Peer} to {Digest} (--p2p-share-tags)")]
    private static partial void LogTagFromPeer(ILogger logger, string registry, string repository, string tag, string peer, Digest digest);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Tag {Registry}/{Repository}:{Tag}: peer {Peer} failed: {Reason}")]
    private static partial void LogTagPeerFailed(ILogger logger, string registry, string repository, string tag, string peer, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not list containerd's content (keeping the last list): {Reason}")]
    private static partial void LogScanFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Blob {Digest} dropped from the p2p store: containerd holds it, peers are served from there")]
    private static partial void LogDropped(ILogger logger, Digest digest);

    [LoggerMessage(Level = LogLevel.Information, Message = "Blob {Digest} held by containerd not served as {Registry}/{Repository}: the registry does not confirm this node may read it")]
    private static partial void LogNotConfirmed(ILogger logger, Digest digest, string registry, string repository);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read the peer list from the server (keeping the last one): {Reason}")]
    private static partial void LogRefreshFailed(ILogger logger, string reason);
}
