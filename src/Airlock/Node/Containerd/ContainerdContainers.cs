using Grpc.Core;
using ContainersApi = Airlock.Node.Containerd.Api.Containers;

namespace Airlock.Node.Containerd;

/// <summary>containerd's container service (Go: <c>client.ContainerService()</c>): which images containers were made from.</summary>
public sealed class ContainerdContainers
{
    private readonly ContainerdClient _client;
    private readonly ContainersApi.Containers.ContainersClient _service;

    internal ContainerdContainers(ContainerdClient client, CallInvoker invoker)
    {
        _client = client;
        _service = new ContainersApi.Containers.ContainersClient(invoker);
    }

    /// <summary>The containers of this namespace (any state: created, running or stopped) with the image each was made from.</summary>
    public async Task<IReadOnlyList<ContainerdContainer>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await _client.Unary("containers.list", c => _service.ListAsync(new ContainersApi.ListContainersRequest(), c), cancellationToken).ConfigureAwait(false);
        return response.Containers.Select(c => new ContainerdContainer(c.Id, c.Image)).ToList();
    }
}
