using Grpc.Core;
using NamespacesApi = Airlock.Node.Containerd.Api.Namespaces;

namespace Airlock.Node.Containerd;

/// <summary>containerd's namespace service (Go: <c>client.NamespaceService()</c>).</summary>
public sealed class ContainerdNamespaces
{
    private readonly ContainerdClient _client;
    private readonly NamespacesApi.Namespaces.NamespacesClient _service;

    internal ContainerdNamespaces(ContainerdClient client, CallInvoker invoker)
    {
        _client = client;
        _service = new NamespacesApi.Namespaces.NamespacesClient(invoker);
    }

    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await _client.Unary("namespaces.list", c => _service.ListAsync(new NamespacesApi.ListNamespacesRequest(), c), cancellationToken).ConfigureAwait(false);
        return response.Namespaces.Select(n => n.Name).ToList();
    }
}
