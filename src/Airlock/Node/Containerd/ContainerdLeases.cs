using Grpc.Core;
using LeasesApi = Airlock.Node.Containerd.Api.Leases;

namespace Airlock.Node.Containerd;

/// <summary>containerd's lease service (Go: <c>client.LeasesService()</c>): what keeps half-imported content from its garbage collector.</summary>
public sealed class ContainerdLeases
{
    private readonly ContainerdClient _client;
    private readonly LeasesApi.Leases.LeasesClient _service;

    internal ContainerdLeases(ContainerdClient client, CallInvoker invoker)
    {
        _client = client;
        _service = new LeasesApi.Leases.LeasesClient(invoker);
    }

    /// <summary>
    /// Creates a lease that expires by itself after <paramref name="expiry"/> (containerd's
    /// <c>containerd.io/gc.expire</c> label) in case this process dies before deleting it.
    /// </summary>
    public async Task<ContainerdLease> CreateAsync(TimeSpan expiry, CancellationToken cancellationToken)
    {
        var id = "airlock-" + Guid.NewGuid().ToString("N");
        var request = new LeasesApi.CreateRequest { Id = id };
        var expires = _client.Options.TimeProvider.GetUtcNow() + expiry;
        request.Labels.Add("containerd.io/gc.expire", expires.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
        await _client.Unary("leases.create", c => _service.CreateAsync(request, c), cancellationToken).ConfigureAwait(false);
        return new ContainerdLease(_client, _client.WithLease(id));
    }

    internal async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            await _client.Unary("leases.delete", c => _service.DeleteAsync(new LeasesApi.DeleteRequest { Id = id }, c), cancellationToken).ConfigureAwait(false);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
        }
    }

    internal async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await _client.Unary("leases.list", c => _service.ListAsync(new LeasesApi.ListRequest(), c), cancellationToken).ConfigureAwait(false);
        return response.Leases.Select(l => l.Id).ToList();
    }
}
