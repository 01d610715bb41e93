using System.Collections.Concurrent;
using Airlock.Content;

namespace Airlock.Registry.PullThrough;

/// <summary>
/// The repositories only authenticated clients may read: the caches of private pull-through upstreams (one
/// with credentials configured). Two sources, either suffices: the configuration (a repository routed to a
/// private upstream, known before anything is cached) and a mark the cache writes into the store
/// (<see cref="IRepositoryStore.MarkAuthenticatedOnlyAsync"/>) before the first byte of such content lands there,
/// so the protection survives a restart with another or no <c>--proxy</c> configuration. Blobs need no mark
/// of their own: a blob is served only through repositories it is linked to, and a repository links a blob
/// cached for another only after its own upstream confirmed it has it.
/// </summary>
/// <remarks>
/// One instance is shared by the access policy (<see cref="Auth.RegistryAuthOptions.AuthenticatedOnly"/> =
/// <see cref="Contains"/>), the catalog (which leaves these names out for anonymous clients) and the cache
/// (which marks). A mark is lifted only by deleting the repository from the store.
/// </remarks>
public sealed class PrivateRepositories
{
    private readonly Func<string, bool>? _configured;
    private readonly ConcurrentDictionary<string, byte> _marked = new(StringComparer.Ordinal);

    public PrivateRepositories(PullThroughOptions? pullThrough)
    {
        if (pullThrough is not null && pullThrough.Upstreams.Any(pullThrough.IsPrivate))
        {
            var router = new PullThroughRouter(pullThrough);
            _configured = repository => router.FromLocalName(repository) is { Private: true };
        }
    }

    /// <summary>True when anonymous clients must not see the repository (neither its content nor its name).</summary>
    public bool Contains(string repository) => _marked.ContainsKey(repository) || _configured?.Invoke(repository) == true;

    /// <summary>The repositories marked in the store (loaded at start, plus those marked since).</summary>
    public IReadOnlyCollection<string> Marked => (IReadOnlyCollection<string>)_marked.Keys;

    /// <summary>Reads the marks the store holds; called once as the registry opens its store.</summary>
    internal async Task LoadAsync(IRepositoryStore repositories, CancellationToken cancellationToken)
    {
        foreach (var repository in await repositories.ListAuthenticatedOnlyAsync(cancellationToken).ConfigureAwait(false))
        {
            _marked.TryAdd(repository, 0);
        }
    }

    /// <summary>Marks the repository in the store (durably, once) before private content is written to it.</summary>
    internal async ValueTask MarkAsync(IRepositoryStore repositories, string repository, CancellationToken cancellationToken)
    {
        if (_marked.ContainsKey(repository))
        {
            return;
        }

        await repositories.MarkAuthenticatedOnlyAsync(repository, cancellationToken).ConfigureAwait(false);
        _marked.TryAdd(repository, 0);
    }
}
