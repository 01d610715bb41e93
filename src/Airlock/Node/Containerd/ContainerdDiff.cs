using Airlock.Oci;
using Grpc.Core;
using DiffApi = Airlock.Node.Containerd.Api.Diff;

namespace Airlock.Node.Containerd;

/// <summary>containerd's diff service (Go: <c>client.DiffService()</c>): applies a layer blob onto a snapshot's mounts.</summary>
internal sealed class ContainerdDiff
{
    private readonly ContainerdClient _client;
    private readonly DiffApi.Diff.DiffClient _service;

    internal ContainerdDiff(ContainerdClient client, CallInvoker invoker)
    {
        _client = client;
        _service = new DiffApi.Diff.DiffClient(invoker);
    }

    /// <summary>Applies a layer blob onto mounts; returns the digest of the uncompressed layer (its diff ID).</summary>
    internal async Task<Digest> ApplyAsync(Descriptor layer, IReadOnlyList<SnapshotMount> mounts, CancellationToken cancellationToken)
    {
        var request = new DiffApi.ApplyRequest { Diff = ContainerdWire.ToWire(layer) };
        request.Mounts.Add(mounts.Select(ContainerdWire.ToWire));
        var response = await _client.Unary("diff.apply " + layer.Digest, c => _service.ApplyAsync(request, c), cancellationToken, _client.Options.TransferTimeout).ConfigureAwait(false);
        return Digest.Parse(response.Applied.Digest);
    }
}
