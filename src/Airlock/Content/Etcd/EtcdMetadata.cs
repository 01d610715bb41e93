using System.Net.Http;
using Airlock.Content.Metadata;
using Airlock.Tls;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace Airlock.Content.Etcd;

/// <summary>
/// One store instance's connection to etcd: keys under the store's prefix, every call bounded by the request timeout
/// and failing as <see cref="StoreUnavailableException"/> (so the registry answers 503, never a wrong answer), and the
/// instance's lease, kept alive in the background, to which everything that must vanish with a dead replica is
/// attached (upload-session holds, reference and sweep leases, the collector's key).
/// </summary>
internal sealed class EtcdMetadata : MetadataStore
{
    private readonly EtcdClient _client;
    private readonly KV.KVClient _kv;
    private readonly Lease.LeaseClient _leases;
    private readonly ClientTrust? _trust;
    private readonly EtcdOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _leaseGate = new(1, 1);
    private long _lease;
    private long _leaseValidUntil;
    private Task _keepAlive = Task.CompletedTask;

    private EtcdMetadata(EtcdClient client, ClientTrust? trust, string root, EtcdOptions options, ILogger logger)
        : base(root)
    {
        _client = client;
        _trust = trust;
        var connection = client.GetConnection();
        _kv = connection.KVClient;
        _leases = connection.LeaseClient;
        _options = options;
        _logger = logger;
    }

    public override string Location => $"etcd://{string.Join(',', _options.Endpoints)}{Root}";

    /// <summary>Connects (lazily: the first call dials) to the endpoints of <paramref name="options"/>, keys under <paramref name="root"/>.</summary>
    public static EtcdMetadata Connect(EtcdOptions options, string root, TimeProvider time, ILogger logger)
    {
        var scheme = options.UsesTls ? "https" : "http";
        var addresses = string.Join(',', options.Endpoints.Select(e => $"{scheme}://{e}"));
        ClientTrust? trust = null;
        if (options.UsesTls)
        {
            // The same trust module as registries.yaml: a CA file instead of the system store, a client certificate.
            trust = new ClientTrust(options.Endpoints.Select(e => KeyValuePair.Create(e, options.Tls)), skipEverywhere: false, time, logger);
        }

        var sslOptions = trust?.CreateSslOptions();
        var client = new EtcdClient(addresses, configureChannelOptions: channel =>
        {
            channel.HttpHandler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                ConnectTimeout = options.RequestTimeout,
                KeepAlivePingDelay = TimeSpan.FromSeconds(10),
                KeepAlivePingTimeout = options.RequestTimeout,
                SslOptions = sslOptions ?? new System.Net.Security.SslClientAuthenticationOptions(),
            };
            channel.DisposeHttpClient = true;
        });
        return new EtcdMetadata(client, trust, root, options, logger);
    }

    public override Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken) =>
        CallAsync(o => _kv.RangeAsync(request, o), cancellationToken);

    public override Task<PutResponse> PutAsync(PutRequest request, CancellationToken cancellationToken) =>
        CallAsync(o => _kv.PutAsync(request, o), cancellationToken);

    public override Task<DeleteRangeResponse> DeleteRangeAsync(DeleteRangeRequest request, CancellationToken cancellationToken) =>
        CallAsync(o => _kv.DeleteRangeAsync(request, o), cancellationToken);

    public override Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken) =>
        CallAsync(o => _kv.TxnAsync(request, o), cancellationToken);

    /// <summary>
    /// This instance's lease, granted on first use and kept alive until the instance is disposed. If it was lost (etcd
    /// was unreachable for longer than its time to live), a new one is granted: what was attached to the old one is
    /// gone, as it would be for a replica that died.
    /// </summary>
    public override async ValueTask<long> LeaseAsync(CancellationToken cancellationToken)
    {
        var lease = Volatile.Read(ref _lease);
        if (lease != 0 && Environment.TickCount64 < Volatile.Read(ref _leaseValidUntil))
        {
            return lease;
        }

        await _leaseGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_lease != 0 && Environment.TickCount64 < _leaseValidUntil)
            {
                return _lease;
            }

            var ttl = (long)_options.LeaseTtl.TotalSeconds;
            var granted = await CallAsync(o => _leases.LeaseGrantAsync(new LeaseGrantRequest { TTL = ttl }, o), cancellationToken).ConfigureAwait(false);
            if (_lease != 0)
            {
                _logger.LogWarning("The etcd lease {Lease} of this replica was lost (etcd unreachable for longer than {Ttl}); what it held was released, continuing with lease {NewLease}", _lease, _options.LeaseTtl, granted.ID);
            }

            Volatile.Write(ref _leaseValidUntil, Environment.TickCount64 + ((granted.TTL * 1000) - 500));
            Volatile.Write(ref _lease, granted.ID);
            if (_keepAlive.IsCompleted)
            {
                _keepAlive = KeepAliveAsync(_stopping.Token);
            }

            return granted.ID;
        }
        finally
        {
            _leaseGate.Release();
        }
    }

    /// <summary>Whether etcd still has <paramref name="lease"/> (its holder is alive, or died less than a time to live ago).</summary>
    public override async Task<bool> LeaseAliveAsync(long lease, CancellationToken cancellationToken)
    {
        var response = await CallAsync(o => _leases.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = lease }, o), cancellationToken).ConfigureAwait(false);
        return response.TTL > 0;
    }

    /// <summary>Renews the lease every third of its time to live over one keep-alive stream, re-opened after failures.</summary>
    private async Task KeepAliveAsync(CancellationToken stopping)
    {
        var period = _options.LeaseTtl / 3;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                using var call = _leases.LeaseKeepAlive(cancellationToken: stopping);
                while (!stopping.IsCancellationRequested)
                {
                    var lease = Volatile.Read(ref _lease);
                    var sent = Environment.TickCount64;
                    await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = lease }, stopping).ConfigureAwait(false);
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                    timeout.CancelAfter(_options.RequestTimeout);
                    if (!await call.ResponseStream.MoveNext(timeout.Token).ConfigureAwait(false))
                    {
                        break;
                    }

                    var response = call.ResponseStream.Current;
                    if (response.TTL > 0 && response.ID == lease)
                    {
                        Volatile.Write(ref _leaseValidUntil, sent + ((response.TTL * 1000) - 500));
                    }
                    else if (response.ID == lease)
                    {
                        // Expired: the next caller grants a new one.
                        Volatile.Write(ref _leaseValidUntil, 0);
                    }

                    await Task.Delay(period, stopping).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested && ex is RpcException or OperationCanceledException or IOException or InvalidOperationException)
            {
                _logger.LogDebug(ex, "The etcd lease keep-alive failed; retrying");
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One unary call with the request timeout; failures of etcd (not of the caller) become <see cref="StoreUnavailableException"/>.</summary>
    public async Task<T> CallAsync<T>(Func<CallOptions, AsyncUnaryCall<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            using var unary = call(new CallOptions(deadline: DateTime.UtcNow + _options.RequestTimeout, cancellationToken: cancellationToken));
            return await unary.ResponseAsync.ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        catch (RpcException ex) when (IsLeaseNotFound(ex))
        {
            throw new LeaseLostException(ex);
        }
        catch (RpcException ex)
        {
            throw new StoreUnavailableException($"etcd ({string.Join(',', _options.Endpoints)}) is unavailable: {ex.Status.StatusCode} {ex.Status.Detail}", ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Grpc.Net.Client cancels the HTTP/2 request when the deadline passes; when that cancellation wins the race
            // against its own status, the call ends in TaskCanceledException instead of RpcException(DeadlineExceeded).
            // Either way etcd did not answer in time: 503, not an unhandled 500.
            throw new StoreUnavailableException($"etcd ({string.Join(',', _options.Endpoints)}) is unavailable: no answer within {_options.RequestTimeout.TotalSeconds:0.###} s", ex);
        }
    }

    private static bool IsLeaseNotFound(RpcException ex) =>
        ex.StatusCode == StatusCode.NotFound && ex.Status.Detail.Contains("lease not found", StringComparison.OrdinalIgnoreCase);

    /// <summary>Revokes the lease (what this instance held is released at once, not after its time to live) and disconnects.</summary>
    public override async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _keepAlive.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (_lease != 0)
            {
                using var revoke = _leases.LeaseRevokeAsync(new LeaseRevokeRequest { ID = _lease }, deadline: DateTime.UtcNow + _options.RequestTimeout);
                await revoke.ResponseAsync.ConfigureAwait(false);
            }
        }
        catch (RpcException ex)
        {
            _logger.LogDebug(ex, "Could not revoke the etcd lease {Lease}; it expires by itself", _lease);
        }

        _client.Dispose();
        _trust?.Dispose();
        _stopping.Dispose();
        _leaseGate.Dispose();
    }
}
