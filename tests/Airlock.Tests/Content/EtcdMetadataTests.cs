using Airlock.Content;
using Airlock.Content.Etcd;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>How a call to etcd that fails becomes what the registry answers (503 for etcd's faults, not 500).</summary>
public sealed class EtcdMetadataTests : IAsyncLifetime
{
    // Nothing listens there; the client dials lazily and these tests never reach the network.
    private readonly EtcdMetadata _etcd = EtcdMetadata.Connect(
        new EtcdOptions { Endpoints = ["127.0.0.1:9"], KeyPrefix = "/tests/", RequestTimeout = TimeSpan.FromSeconds(2) }, "/tests/", TimeProvider.System, NullLogger.Instance);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _etcd.DisposeAsync();

    private static AsyncUnaryCall<string> Failing(Exception exception) =>
        new(Task.FromException<string>(exception), Task.FromResult(new Metadata()), () => Status.DefaultCancelled, () => [], () => { });

    [Fact]
    public async Task A_deadline_that_Grpc_reports_as_a_cancelled_task_is_a_store_outage_naming_the_timeout()
    {
        // What Grpc.Net.Client throws when its deadline timer cancels the HTTP/2 request before the call's status is
        // set (seen with a SIGSTOPped etcd: GrpcCall.DeadlineExceeded → CancelCall → Http2Stream … TaskCanceledException).
        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() =>
            _etcd.CallAsync(_ => Failing(new TaskCanceledException("The operation was canceled.")), CancellationToken.None));

        Assert.Contains("etcd (127.0.0.1:9) is unavailable: no answer within 2 s", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deadline_reported_as_DeadlineExceeded_is_a_store_outage_too()
    {
        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() =>
            _etcd.CallAsync(_ => Failing(new RpcException(new Status(StatusCode.DeadlineExceeded, ""))), CancellationToken.None));

        Assert.Contains("DeadlineExceeded", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_callers_own_cancellation_stays_a_cancellation()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            _etcd.CallAsync(_ => Failing(new TaskCanceledException()), cancelled.Token));
    }
}
