using System.Buffers;
using System.Net.Sockets;
using Airlock.Bundles.Transfer;
using Airlock.Content;
using Airlock.IO;
using Airlock.Oci;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using ContainersApi = Airlock.Node.Containerd.Api.Containers;
using ContentApi = Airlock.Node.Containerd.Api.Content;
using CriApi = Airlock.Node.Containerd.Cri;
using DiffApi = Airlock.Node.Containerd.Api.Diff;
using ImagesApi = Airlock.Node.Containerd.Api.Images;
using LeasesApi = Airlock.Node.Containerd.Api.Leases;
using NamespacesApi = Airlock.Node.Containerd.Api.Namespaces;
using SnapshotsApi = Airlock.Node.Containerd.Api.Snapshots;
using TypesApi = Airlock.Node.Containerd.Api.Types;
using VersionApi = Airlock.Node.Containerd.Api.Version;

namespace Airlock.Node.Containerd;

/// <summary>How a <see cref="ContainerdClient"/> bounds its calls.</summary>
public sealed record ContainerdClientOptions
{
    /// <summary>Deadline of each unary call (info, image create, snapshot prepare …).</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Deadline of one streamed blob write or read and of one layer apply; large layers need minutes.</summary>
    public TimeSpan TransferTimeout { get; init; } = TimeSpan.FromMinutes(30);

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// containerd's gRPC API over its unix socket (HTTP/2 without TLS), scoped to one containerd namespace
/// (<c>k8s.io</c>, the CRI's, by default) and optionally to a lease. Only the calls image import and
/// unpack need; wire types stay internal.
/// </summary>
public sealed class ContainerdClient : IAsyncDisposable
{
    public const string DefaultNamespace = "k8s.io";

    /// <summary>containerd reads the namespace of every call from this gRPC metadata key.</summary>
    internal const string NamespaceHeader = "containerd-namespace";

    /// <summary>Content and snapshots created by a call carrying this key belong to that lease until it is deleted.</summary>
    internal const string LeaseHeader = "containerd-lease";

    // Below gRPC's 4 MiB default message limit on containerd's side, large enough that the one round trip
    // per chunk the Write protocol needs does not dominate.
    private const int WriteChunkSize = 1024 * 1024;
    private const int ChunksInFlight = 8;

    private readonly GrpcChannel _channel;
    private readonly bool _ownsChannel;
    private readonly Metadata _headers;
    private readonly ContainerdClientOptions _options;

    private ContainerdClient(GrpcChannel channel, bool ownsChannel, string @namespace, string? lease, ContainerdClientOptions options)
    {
        _channel = channel;
        _ownsChannel = ownsChannel;
        _options = options;
        Namespace = @namespace;
        Lease = lease;
        _headers = new Metadata { { NamespaceHeader, @namespace } };
        if (lease is not null)
        {
            _headers.Add(LeaseHeader, lease);
        }

        var invoker = channel.CreateCallInvoker();
        VersionService = new VersionApi.Version.VersionClient(invoker);
        NamespacesService = new NamespacesApi.Namespaces.NamespacesClient(invoker);
        ContentService = new ContentApi.Content.ContentClient(invoker);
        ImagesService = new ImagesApi.Images.ImagesClient(invoker);
        ContainersService = new ContainersApi.Containers.ContainersClient(invoker);
        LeasesService = new LeasesApi.Leases.LeasesClient(invoker);
        SnapshotsService = new SnapshotsApi.Snapshots.SnapshotsClient(invoker);
        DiffService = new DiffApi.Diff.DiffClient(invoker);
        CriImageService = new CriApi.ImageService.ImageServiceClient(invoker);
    }

    /// <summary>The containerd namespace every call is made in.</summary>
    public string Namespace { get; }

    /// <summary>The lease every call carries, when this client came from <see cref="CreateLeaseAsync"/>.</summary>
    public string? Lease { get; }

    public ContainerdClientOptions Options => _options;

    internal VersionApi.Version.VersionClient VersionService { get; }

    internal NamespacesApi.Namespaces.NamespacesClient NamespacesService { get; }

    internal ContentApi.Content.ContentClient ContentService { get; }

    internal ImagesApi.Images.ImagesClient ImagesService { get; }

    internal ContainersApi.Containers.ContainersClient ContainersService { get; }

    internal LeasesApi.Leases.LeasesClient LeasesService { get; }

    internal SnapshotsApi.Snapshots.SnapshotsClient SnapshotsService { get; }

    internal DiffApi.Diff.DiffClient DiffService { get; }

    internal CriApi.ImageService.ImageServiceClient CriImageService { get; }

    /// <summary>
    /// A client for the containerd listening on <paramref name="socketPath"/> (e.g.
    /// <c>/run/containerd/containerd.sock</c>). Nothing is dialled until the first call.
    /// </summary>
    public static ContainerdClient Connect(string socketPath, string @namespace = DefaultNamespace, ContainerdClientOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        return new ContainerdClient(OpenChannel(socketPath), ownsChannel: true, @namespace, lease: null, options ?? new ContainerdClientOptions());
    }

    /// <summary>
    /// A gRPC channel to the unix socket <paramref name="socketPath"/>, the way containerd (and the CRI plugin it
    /// serves on the same socket) is spoken to. Nothing is dialled until the first call.
    /// </summary>
    internal static GrpcChannel OpenChannel(string socketPath)
    {
        var endpoint = new UnixDomainSocketEndPoint(socketPath);
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            EnableMultipleHttp2Connections = true,
        };

        // The authority is a placeholder: the connect callback decides where bytes go. containerd speaks
        // h2c, which GrpcChannel uses for an http:// address.
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        });
    }

    /// <summary>The same connection in another containerd namespace.</summary>
    public ContainerdClient WithNamespace(string @namespace) => new(_channel, ownsChannel: false, @namespace, Lease, _options);

    public async Task<ContainerdVersion> VersionAsync(CancellationToken cancellationToken)
    {
        var response = await Unary("version", c => VersionService.VersionAsync(new Google.Protobuf.WellKnownTypes.Empty(), c), cancellationToken).ConfigureAwait(false);
        return new ContainerdVersion(response.Version, response.Revision);
    }

    public async Task<IReadOnlyList<string>> ListNamespacesAsync(CancellationToken cancellationToken)
    {
        var response = await Unary("namespaces.list", c => NamespacesService.ListAsync(new NamespacesApi.ListNamespacesRequest(), c), cancellationToken).ConfigureAwait(false);
        return response.Namespaces.Select(n => n.Name).ToList();
    }

    /// <summary>
    /// Creates a lease that expires by itself after <paramref name="expiry"/> (containerd's
    /// <c>containerd.io/gc.expire</c> label) in case this process dies before deleting it.
    /// </summary>
    public async Task<ContainerdLease> CreateLeaseAsync(TimeSpan expiry, CancellationToken cancellationToken)
    {
        var id = "airlock-" + Guid.NewGuid().ToString("N");
        var request = new LeasesApi.CreateRequest { Id = id };
        var expires = _options.TimeProvider.GetUtcNow() + expiry;
        request.Labels.Add("containerd.io/gc.expire", expires.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
        await Unary("leases.create", c => LeasesService.CreateAsync(request, c), cancellationToken).ConfigureAwait(false);
        return new ContainerdLease(this, new ContainerdClient(_channel, ownsChannel: false, Namespace, id, _options));
    }

    internal async Task DeleteLeaseAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            await Unary("leases.delete", c => LeasesService.DeleteAsync(new LeasesApi.DeleteRequest { Id = id }, c), cancellationToken).ConfigureAwait(false);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
        }
    }

    internal async Task<IReadOnlyList<string>> ListLeasesAsync(CancellationToken cancellationToken)
    {
        var response = await Unary("leases.list", c => LeasesService.ListAsync(new LeasesApi.ListRequest(), c), cancellationToken).ConfigureAwait(false);
        return response.Leases.Select(l => l.Id).ToList();
    }

    // ---- content ----

    /// <summary>The committed blob, or null when containerd does not have it.</summary>
    public async Task<ContentInfo?> GetContentInfoAsync(Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            var response = await Unary("content.info " + digest, c => ContentService.InfoAsync(new ContentApi.InfoRequest { Digest = digest.ToString() }, c), cancellationToken).ConfigureAwait(false);
            return ToContentInfo(response.Info);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Sets (adds or replaces) the given labels on a committed blob, leaving its other labels alone.</summary>
    public async Task<ContentInfo> UpdateContentLabelsAsync(Digest digest, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var request = new ContentApi.UpdateRequest { Info = new ContentApi.Info { Digest = digest.ToString() }, UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask() };
        foreach (var (key, value) in labels)
        {
            request.Info.Labels[key] = value;
            request.UpdateMask.Paths.Add("labels." + key);
        }

        var response = await Unary("content.update " + digest, c => ContentService.UpdateAsync(request, c), cancellationToken).ConfigureAwait(false);
        return ToContentInfo(response.Info);
    }

    /// <summary>A committed blob as a stream, read in the chunks containerd sends.</summary>
    public Stream OpenContent(Digest digest, CancellationToken cancellationToken)
    {
        var call = ContentService.Read(new ContentApi.ReadContentRequest { Digest = digest.ToString() }, TransferOptions(cancellationToken));
        return new ContentReadStream(call, "content.read " + digest);
    }

    /// <summary>
    /// Streams <paramref name="content"/> into the content store under ingest <paramref name="ingestRef"/> and
    /// commits it as <paramref name="blob"/> with <paramref name="labels"/>. The digest and size are computed
    /// here while sending and checked before the commit (and again by containerd at commit); a mismatch
    /// throws <see cref="DigestMismatchException"/>. Returns false
    /// when containerd already had the blob. On any failure the ingest is aborted so nothing is left behind.
    /// </summary>
    public async Task<bool> WriteContentAsync(
        string ingestRef,
        Descriptor blob,
        Stream content,
        IReadOnlyDictionary<string, string>? labels,
        CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(ingestRef);
        var operation = "content.write " + blob.Digest;
        var buffer = ArrayPool<byte>.Shared.Rent(WriteChunkSize);

        // Throws before the commit is sent if the content is not the descriptor's digest and size.
        var verified = new VerifyingStream(content, blob.Digest, blob.Size, leaveOpen: true);
        var expected = blob.Digest.ToString();
        var call = await OpenWriteAsync(ingestRef, blob, operation, cancellationToken).ConfigureAwait(false);
        if (call is null)
        {
            await verified.DisposeAsync().ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(buffer);
            return false;
        }

        try
        {
            // Offset 0 on the first write truncates whatever an earlier, interrupted ingest of this ref left.
            // containerd answers every message; a few chunks are sent ahead of the answers so the round trip
            // does not limit throughput, and each answer must report the offset its chunk ends at.
            long offset = 0;
            var unanswered = new Queue<long>();
            while (true)
            {
                var filled = await FillAsync(verified, buffer, cancellationToken).ConfigureAwait(false);
                if (filled == 0)
                {
                    break;
                }

                // Wrapping the pooled buffer is safe: grpc serialises the message into the request stream before
                // WriteAsync completes, and only then is the buffer refilled.
                await call.RequestStream.WriteAsync(new ContentApi.WriteContentRequest
                {
                    Action = ContentApi.WriteAction.Write,
                    Offset = offset,
                    Data = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, filled)),
                }, cancellationToken).ConfigureAwait(false);
                offset += filled;
                unanswered.Enqueue(offset);
                if (unanswered.Count >= ChunksInFlight)
                {
                    await ExpectOffsetAsync(call, unanswered.Dequeue(), operation, cancellationToken).ConfigureAwait(false);
                }
            }

            while (unanswered.Count > 0)
            {
                await ExpectOffsetAsync(call, unanswered.Dequeue(), operation, cancellationToken).ConfigureAwait(false);
            }

            var commit = new ContentApi.WriteContentRequest
            {
                Action = ContentApi.WriteAction.Commit,
                Offset = offset,
                Total = blob.Size,
                Expected = expected,
            };
            if (labels is not null)
            {
                AddAll(commit.Labels, labels);
            }

            await call.RequestStream.WriteAsync(commit, cancellationToken).ConfigureAwait(false);
            await NextResponse(call, operation, cancellationToken).ConfigureAwait(false);
            await call.RequestStream.CompleteAsync().ConfigureAwait(false);
            return true;
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.AlreadyExists)
        {
            // Committed by someone else while we were writing; containerd dropped our ingest itself.
            return false;
        }
        catch
        {
            call.Dispose();
            await AbortIngestQuietlyAsync(ingestRef).ConfigureAwait(false);
            throw;
        }
        finally
        {
            call.Dispose();
            await verified.DisposeAsync().ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // Opens the write stream with its Stat message. Null when containerd has the blob already (it answers
    // AlreadyExists for an expected digest it holds). Another writer of the same ref (a parallel import of
    // a shared base layer) holds the ingest's lock: wait for it to commit or give up, within the call timeout.
    private async Task<AsyncDuplexStreamingCall<ContentApi.WriteContentRequest, ContentApi.WriteContentResponse>?> OpenWriteAsync(
        string ingestRef, Descriptor blob, string operation, CancellationToken cancellationToken)
    {
        var giveUp = _options.TimeProvider.GetUtcNow() + _options.CallTimeout;
        while (true)
        {
            var call = ContentService.Write(TransferOptions(cancellationToken));
            try
            {
                await call.RequestStream.WriteAsync(new ContentApi.WriteContentRequest
                {
                    Action = ContentApi.WriteAction.Stat,
                    Ref = ingestRef,
                    Total = blob.Size,
                    Expected = blob.Digest.ToString(),
                }, cancellationToken).ConfigureAwait(false);
                await NextResponse(call, operation, cancellationToken).ConfigureAwait(false);
                return call;
            }
            catch (ContainerdException ex) when (ex.Code == StatusCode.AlreadyExists)
            {
                call.Dispose();
                return null;
            }
            catch (ContainerdException ex) when (ex.Code == StatusCode.Unavailable
                && ex.Message.Contains("locked", StringComparison.Ordinal) && _options.TimeProvider.GetUtcNow() < giveUp)
            {
                call.Dispose();
                await Task.Delay(TimeSpan.FromMilliseconds(200), _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                if (await GetContentInfoAsync(blob.Digest, cancellationToken).ConfigureAwait(false) is not null)
                {
                    return null;
                }
            }
            catch
            {
                call.Dispose();
                throw;
            }
        }
    }

    /// <summary>The ingest with this ref, or null when there is none.</summary>
    public async Task<IngestStatus?> GetIngestStatusAsync(string ingestRef, CancellationToken cancellationToken)
    {
        try
        {
            var response = await Unary("content.status " + ingestRef, c => ContentService.StatusAsync(new ContentApi.StatusRequest { Ref = ingestRef }, c), cancellationToken).ConfigureAwait(false);
            return ToIngestStatus(response.Status);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Ingests in progress or left behind, optionally filtered by a ref regular expression.</summary>
    public async Task<IReadOnlyList<IngestStatus>> ListIngestsAsync(string? refPattern, CancellationToken cancellationToken)
    {
        var request = new ContentApi.ListStatusesRequest();
        if (refPattern is not null)
        {
            request.Filters.Add("ref~=" + refPattern);
        }

        var response = await Unary("content.list-statuses", c => ContentService.ListStatusesAsync(request, c), cancellationToken).ConfigureAwait(false);
        return response.Statuses.Select(ToIngestStatus).ToList();
    }

    /// <summary>Drops an ingest and its partial data; an ingest that does not exist is not an error.</summary>
    public async Task AbortIngestAsync(string ingestRef, CancellationToken cancellationToken)
    {
        try
        {
            await Unary("content.abort " + ingestRef, c => ContentService.AbortAsync(new ContentApi.AbortRequest { Ref = ingestRef }, c), cancellationToken).ConfigureAwait(false);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
        }
    }

    // The caller's token may be the reason we are here; cleanup gets its own bounded time. containerd may
    // still be opening the writer of a cancelled stream when the first abort arrives, so check and repeat.
    private async Task AbortIngestQuietlyAsync(string ingestRef)
    {
        using var timeout = new CancellationTokenSource(_options.CallTimeout, _options.TimeProvider);
        try
        {
            for (var attempt = 0; attempt < 5; attempt++)
            {
                await AbortIngestAsync(ingestRef, timeout.Token).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromMilliseconds(20 * (attempt + 1)), _options.TimeProvider, timeout.Token).ConfigureAwait(false);
                if (await GetIngestStatusAsync(ingestRef, timeout.Token).ConfigureAwait(false) is null)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is ContainerdException or OperationCanceledException)
        {
            // Best effort: a dangling ingest is harmless to correctness and containerd's GC removes stale ones.
        }
    }

    // ---- images ----

    public async Task<ContainerdImage?> GetImageAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var response = await Unary("images.get " + name, c => ImagesService.GetAsync(new ImagesApi.GetImageRequest { Name = name }, c), cancellationToken).ConfigureAwait(false);
            return ToImage(response.Image);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Image records, optionally filtered with containerd filter syntax (e.g. <c>name==docker.io/library/x:1</c>).</summary>
    public async Task<IReadOnlyList<ContainerdImage>> ListImagesAsync(IEnumerable<string>? filters, CancellationToken cancellationToken)
    {
        var request = new ImagesApi.ListImagesRequest();
        if (filters is not null)
        {
            request.Filters.Add(filters);
        }

        var response = await Unary("images.list", c => ImagesService.ListAsync(request, c), cancellationToken).ConfigureAwait(false);
        return response.Images.Select(ToImage).ToList();
    }

    /// <summary>
    /// Creates the image record, or points an existing one at <paramref name="target"/> and sets
    /// <paramref name="labels"/> on it (labels others put there stay).
    /// </summary>
    public async Task<ContainerdImage> PutImageAsync(string name, Descriptor target, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var image = new ImagesApi.Image { Name = name, Target = ToWire(target) };
        AddAll(image.Labels, labels);
        try
        {
            var created = await Unary("images.create " + name, c => ImagesService.CreateAsync(new ImagesApi.CreateImageRequest { Image = image }, c), cancellationToken).ConfigureAwait(false);
            return ToImage(created.Image);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.AlreadyExists)
        {
            var update = new ImagesApi.UpdateImageRequest { Image = image, UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask() };
            update.UpdateMask.Paths.Add("target");
            update.UpdateMask.Paths.Add(labels.Keys.Select(k => "labels." + k));
            var updated = await Unary("images.update " + name, c => ImagesService.UpdateAsync(update, c), cancellationToken).ConfigureAwait(false);
            return ToImage(updated.Image);
        }
    }

    /// <summary>Deletes an image record; false when there was none. Content goes with the next garbage collection.</summary>
    public async Task<bool> DeleteImageAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await Unary("images.delete " + name, c => ImagesService.DeleteAsync(new ImagesApi.DeleteImageRequest { Name = name }, c), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return false;
        }
    }

    // ---- containers ----

    /// <summary>The containers of this namespace (any state: created, running or stopped) with the image each was made from.</summary>
    public async Task<IReadOnlyList<ContainerdContainer>> ListContainersAsync(CancellationToken cancellationToken)
    {
        var response = await Unary("containers.list", c => ContainersService.ListAsync(new ContainersApi.ListContainersRequest(), c), cancellationToken).ConfigureAwait(false);
        return response.Containers.Select(c => new ContainerdContainer(c.Id, c.Image)).ToList();
    }

    /// <summary>
    /// Pulls <paramref name="image"/> through the CRI image service containerd serves on the same socket, as the
    /// kubelet and K3s's <c>.txt</c> pre-pull do: containerd resolves it with its own <c>hosts.toml</c> tree and
    /// registry auth (read at every pull, so a re-rendered registries.yaml applies at once) into <c>k8s.io</c>.
    /// Returns the image id. A containerd without the CRI plugin fails with <see cref="StatusCode.Unimplemented"/>.
    /// </summary>
    public async Task<string> CriPullImageAsync(string image, CancellationToken cancellationToken)
    {
        var request = new CriApi.PullImageRequest { Image = new CriApi.ImageSpec { Image = image } };
        var response = await Unary("cri.pull " + image, c => CriImageService.PullImageAsync(request, c), cancellationToken, _options.TransferTimeout).ConfigureAwait(false);
        return response.ImageRef;
    }

    // ---- snapshots and diff (unpack) ----

    internal async Task<SnapshotInfo?> StatSnapshotAsync(string snapshotter, string key, CancellationToken cancellationToken)
    {
        try
        {
            var response = await Unary("snapshots.stat " + key, c => SnapshotsService.StatAsync(new SnapshotsApi.StatSnapshotRequest { Snapshotter = snapshotter, Key = key }, c), cancellationToken).ConfigureAwait(false);
            return new SnapshotInfo(response.Info.Name, response.Info.Parent, response.Info.Kind.ToString(), response.Info.Labels);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    internal async Task<IReadOnlyList<SnapshotMount>> PrepareSnapshotAsync(string snapshotter, string key, string? parent, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var request = new SnapshotsApi.PrepareSnapshotRequest { Snapshotter = snapshotter, Key = key, Parent = parent ?? string.Empty };
        AddAll(request.Labels, labels);
        var response = await Unary("snapshots.prepare " + key, c => SnapshotsService.PrepareAsync(request, c), cancellationToken).ConfigureAwait(false);
        return response.Mounts.Select(FromWire).ToList();
    }

    internal async Task<IReadOnlyList<SnapshotMount>> SnapshotMountsAsync(string snapshotter, string key, CancellationToken cancellationToken)
    {
        var response = await Unary("snapshots.mounts " + key, c => SnapshotsService.MountsAsync(new SnapshotsApi.MountsRequest { Snapshotter = snapshotter, Key = key }, c), cancellationToken).ConfigureAwait(false);
        return response.Mounts.Select(FromWire).ToList();
    }

    internal async Task CommitSnapshotAsync(string snapshotter, string name, string key, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var request = new SnapshotsApi.CommitSnapshotRequest { Snapshotter = snapshotter, Name = name, Key = key };
        AddAll(request.Labels, labels);
        await Unary("snapshots.commit " + name, c => SnapshotsService.CommitAsync(request, c), cancellationToken).ConfigureAwait(false);
    }

    internal async Task RemoveSnapshotAsync(string snapshotter, string key, CancellationToken cancellationToken)
    {
        try
        {
            await Unary("snapshots.remove " + key, c => SnapshotsService.RemoveAsync(new SnapshotsApi.RemoveSnapshotRequest { Snapshotter = snapshotter, Key = key }, c), cancellationToken).ConfigureAwait(false);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
        }
    }

    /// <summary>Applies a layer blob onto mounts; returns the digest of the uncompressed layer (its diff ID).</summary>
    internal async Task<Digest> ApplyLayerAsync(Descriptor layer, IReadOnlyList<SnapshotMount> mounts, CancellationToken cancellationToken)
    {
        var request = new DiffApi.ApplyRequest { Diff = ToWire(layer) };
        request.Mounts.Add(mounts.Select(ToWire));
        var response = await Unary("diff.apply " + layer.Digest, c => DiffService.ApplyAsync(request, c), cancellationToken, _options.TransferTimeout).ConfigureAwait(false);
        return Digest.Parse(response.Applied.Digest);
    }

    public async ValueTask DisposeAsync()
    {
        if (_ownsChannel)
        {
            await _channel.ShutdownAsync().ConfigureAwait(false);
            _channel.Dispose();
        }
    }

    // ---- plumbing ----

    private async Task<TResponse> Unary<TResponse>(string operation, Func<CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        try
        {
            using var pending = call(CallOptionsFor(cancellationToken, timeout ?? _options.CallTimeout));
            return await pending.ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(ex.Message, ex, cancellationToken);
        }
        catch (RpcException ex)
        {
            throw ContainerdException.From(operation, ex);
        }
    }

    private static async Task<ContentApi.WriteContentResponse> NextResponse(
        AsyncDuplexStreamingCall<ContentApi.WriteContentRequest, ContentApi.WriteContentResponse> call, string operation, CancellationToken cancellationToken)
    {
        try
        {
            if (!await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                throw new ContainerdException(operation, StatusCode.Internal, "containerd closed the write stream early");
            }

            return call.ResponseStream.Current;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(ex.Message, ex, cancellationToken);
        }
        catch (RpcException ex)
        {
            throw ContainerdException.From(operation, ex);
        }
    }

    private static async Task ExpectOffsetAsync(
        AsyncDuplexStreamingCall<ContentApi.WriteContentRequest, ContentApi.WriteContentResponse> call, long offset, string operation, CancellationToken cancellationToken)
    {
        var answer = await NextResponse(call, operation, cancellationToken).ConfigureAwait(false);
        if (answer.Offset != offset)
        {
            throw new ContainerdException(operation, StatusCode.DataLoss, $"containerd is at offset {answer.Offset}, expected {offset}");
        }
    }

    private static async Task<int> FillAsync(Stream content, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < WriteChunkSize)
        {
            var n = await content.ReadAsync(buffer.AsMemory(filled, WriteChunkSize - filled), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            filled += n;
        }

        return filled;
    }

    private CallOptions CallOptionsFor(CancellationToken cancellationToken, TimeSpan timeout) =>
        new(_headers, _options.TimeProvider.GetUtcNow().UtcDateTime + timeout, cancellationToken);

    private CallOptions TransferOptions(CancellationToken cancellationToken) => CallOptionsFor(cancellationToken, _options.TransferTimeout);

    private static ContentInfo ToContentInfo(ContentApi.Info info) =>
        new(Digest.Parse(info.Digest), info.Size, new Dictionary<string, string>(info.Labels, StringComparer.Ordinal));

    private static IngestStatus ToIngestStatus(ContentApi.Status status) => new(status.Ref, status.Offset, status.Total, status.Expected);

    private static ContainerdImage ToImage(ImagesApi.Image image) =>
        new(image.Name, FromWire(image.Target), new Dictionary<string, string>(image.Labels, StringComparer.Ordinal));

    private static TypesApi.ContentDescriptor ToWire(Descriptor descriptor)
    {
        var wire = new TypesApi.ContentDescriptor { MediaType = descriptor.MediaType, Digest = descriptor.Digest.ToString(), Size = descriptor.Size };
        if (descriptor.Annotations is not null)
        {
            AddAll(wire.Annotations, descriptor.Annotations);
        }

        return wire;
    }

    private static Descriptor FromWire(TypesApi.ContentDescriptor wire) => new()
    {
        MediaType = wire.MediaType,
        Digest = Digest.Parse(wire.Digest),
        Size = wire.Size,
        Annotations = wire.Annotations.Count == 0 ? null : new Dictionary<string, string>(wire.Annotations, StringComparer.Ordinal),
    };

    private static void AddAll(Google.Protobuf.Collections.MapField<string, string> map, IReadOnlyDictionary<string, string> values)
    {
        foreach (var (key, value) in values)
        {
            map[key] = value;
        }
    }

    private static SnapshotMount FromWire(TypesApi.Mount mount) => new(mount.Type, mount.Source, mount.Options.ToList());

    private static TypesApi.Mount ToWire(SnapshotMount mount)
    {
        var wire = new TypesApi.Mount { Type = mount.Type, Source = mount.Source };
        wire.Options.Add(mount.Options);
        return wire;
    }

    /// <summary>Content.Read's server stream as a read-only stream; containerd ends it after the last chunk.</summary>
    private sealed class ContentReadStream(AsyncServerStreamingCall<ContentApi.ReadContentResponse> call, string operation) : ReadOnlyStream
    {
        private ReadOnlyMemory<byte> _pending;
        private bool _ended;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_pending.IsEmpty && !_ended)
            {
                try
                {
                    if (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
                    {
                        _pending = call.ResponseStream.Current.Data.Memory;
                    }
                    else
                    {
                        _ended = true;
                    }
                }
                catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled)
                {
                    throw ContainerdException.From(operation, ex);
                }
            }

            var n = Math.Min(buffer.Length, _pending.Length);
            _pending[..n].CopyTo(buffer);
            _pending = _pending[n..];
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                call.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
