using Grpc.Core;
using SnapshotsApi = Airlock.Node.Containerd.Api.Snapshots;

namespace Airlock.Node.Containerd;

/// <summary>
/// containerd's snapshot service (Go: <c>client.SnapshotService(name)</c>): the layers unpacked by a snapshotter
/// (<c>overlayfs</c>, <c>native</c>), named by chain ID.
/// </summary>
internal sealed class ContainerdSnapshots
{
    private readonly ContainerdClient _client;
    private readonly SnapshotsApi.Snapshots.SnapshotsClient _service;

    internal ContainerdSnapshots(ContainerdClient client, CallInvoker invoker)
    {
        _client = client;
        _service = new SnapshotsApi.Snapshots.SnapshotsClient(invoker);
    }

    internal async Task<SnapshotInfo?> StatAsync(string snapshotter, string key, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _client.Unary("snapshots.stat " + key, c => _service.StatAsync(new SnapshotsApi.StatSnapshotRequest { Snapshotter = snapshotter, Key = key }, c), cancellationToken).ConfigureAwait(false);
            return new SnapshotInfo(response.Info.Name, response.Info.Parent, response.Info.Kind.ToString(), response.Info.Labels);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    internal async Task<IReadOnlyList<SnapshotMount>> PrepareAsync(string snapshotter, string key, string? parent, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var request = new SnapshotsApi.PrepareSnapshotRequest { Snapshotter = snapshotter, Key = key, Parent = parent ?? string.Empty };
        ContainerdWire.AddAll(request.Labels, labels);
        var response = await _client.Unary("snapshots.prepare " + key, c => _service.PrepareAsync(request, c), cancellationToken).ConfigureAwait(false);
        return response.Mounts.Select(ContainerdWire.FromWire).ToList();
    }

    internal async Task<IReadOnlyList<SnapshotMount>> MountsAsync(string snapshotter, string key, CancellationToken cancellationToken)
    {
        var response = await _client.Unary("snapshots.mounts " + key, c => _service.MountsAsync(new SnapshotsApi.MountsRequest { Snapshotter = snapshotter, Key = key }, c), cancellationToken).ConfigureAwait(false);
        return response.Mounts.Select(ContainerdWire.FromWire).ToList();
    }

    internal async Task CommitAsync(string snapshotter, string name, string key, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var request = new SnapshotsApi.CommitSnapshotRequest { Snapshotter = snapshotter, Name = name, Key = key };
        ContainerdWire.AddAll(request.Labels, labels);
        await _client.Unary("snapshots.commit " + name, c => _service.CommitAsync(request, c), cancellationToken).ConfigureAwait(false);
    }

    internal async Task RemoveAsync(string snapshotter, string key, CancellationToken cancellationToken)
    {
        try
        {
            await _client.Unary("snapshots.remove " + key, c => _service.RemoveAsync(new SnapshotsApi.RemoveSnapshotRequest { Snapshotter = snapshotter, Key = key }, c), cancellationToken).ConfigureAwait(false);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
        }
    }
}
