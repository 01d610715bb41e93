namespace Airlock.Node.Containerd;

/// <summary>
/// A containerd lease: content and snapshots written through <see cref="Client"/> are kept from garbage
/// collection until the lease is deleted (on dispose), by which time image records and GC labels hold them.
/// </summary>
public sealed class ContainerdLease : IAsyncDisposable
{
    private readonly ContainerdClient _owner;
    private bool _deleted;

    internal ContainerdLease(ContainerdClient owner, ContainerdClient leased)
    {
        _owner = owner;
        Client = leased;
    }

    public string Id => Client.Lease!;

    /// <summary>The same connection, with the lease on every call.</summary>
    public ContainerdClient Client { get; }

    public async ValueTask DisposeAsync()
    {
        if (_deleted)
        {
            return;
        }

        _deleted = true;

        // Deleting must happen even when the import was cancelled; it is bounded by the client's call timeout.
        await _owner.Leases.DeleteAsync(Id, CancellationToken.None).ConfigureAwait(false);
    }
}
