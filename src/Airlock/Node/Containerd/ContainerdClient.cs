using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
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
/// (<c>k8s.io</c>, the CRI's, by default) and optionally to a lease. As containerd's own Go client, one client per
/// service (<see cref="Content"/>, <see cref="Images"/>, <see cref="Leases"/>, <see cref="Snapshots"/> …) over the
/// one connection; only the calls image import and unpack need, and wire types stay internal.
/// </summary>
public sealed class ContainerdClient : IAsyncDisposable
{
    public const string DefaultNamespace = "k8s.io";

    /// <summary>containerd reads the namespace of every call from this gRPC metadata key.</summary>
    internal const string NamespaceHeader = "containerd-namespace";

    /// <summary>Content and snapshots created by a call carrying this key belong to that lease until it is deleted.</summary>
    internal const string LeaseHeader = "containerd-lease";

    private readonly GrpcChannel _channel;
    private readonly bool _ownsChannel;
    private readonly Metadata _headers;
    private readonly ContainerdClientOptions _options;
    private readonly VersionApi.Version.VersionClient _version;

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
        _version = new VersionApi.Version.VersionClient(invoker);
        Namespaces = new ContainerdNamespaces(this, invoker);
        Content = new ContainerdContentStore(this, invoker);
        Images = new ContainerdImageStore(this, invoker);
        Containers = new ContainerdContainers(this, invoker);
        Leases = new ContainerdLeases(this, invoker);
        Snapshots = new ContainerdSnapshots(this, invoker);
        Diff = new ContainerdDiff(this, invoker);
        Cri = new ContainerdCriImages(this, invoker);
    }

    /// <summary>The containerd namespace every call is made in.</summary>
    public string Namespace { get; }

    /// <summary>The lease every call carries, when this client came from <see cref="ContainerdLeases.CreateAsync"/>.</summary>
    public string? Lease { get; }

    public ContainerdClientOptions Options => _options;

    public ContainerdNamespaces Namespaces { get; }

    public ContainerdContentStore Content { get; }

    public ContainerdImageStore Images { get; }

    public ContainerdContainers Containers { get; }

    public ContainerdLeases Leases { get; }

    internal ContainerdSnapshots Snapshots { get; }

    internal ContainerdDiff Diff { get; }

    /// <summary>The CRI image service containerd's CRI plugin serves on the same socket.</summary>
    public ContainerdCriImages Cri { get; }

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

    /// <summary>The same connection with <paramref name="lease"/> on every call.</summary>
    internal ContainerdClient WithLease(string lease) => new(_channel, ownsChannel: false, Namespace, lease, _options);

    public async Task<ContainerdVersion> VersionAsync(CancellationToken cancellationToken)
    {
        var response = await Unary("version", c => _version.VersionAsync(new Google.Protobuf.WellKnownTypes.Empty(), c), cancellationToken).ConfigureAwait(false);
        return new ContainerdVersion(response.Version, response.Revision);
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

    /// <summary>One unary call with this client's namespace, lease and deadline; gRPC failures become <see cref="ContainerdException"/>.</summary>
    internal async Task<TResponse> Unary<TResponse>(string operation, Func<CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken cancellationToken, TimeSpan? timeout = null)
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

    private CallOptions CallOptionsFor(CancellationToken cancellationToken, TimeSpan timeout) =>
        new(_headers, _options.TimeProvider.GetUtcNow().UtcDateTime + timeout, cancellationToken);

    /// <summary>Call options for a streamed transfer or a layer apply, bounded by the transfer timeout.</summary>
    internal CallOptions TransferOptions(CancellationToken cancellationToken) => CallOptionsFor(cancellationToken, _options.TransferTimeout);
}
