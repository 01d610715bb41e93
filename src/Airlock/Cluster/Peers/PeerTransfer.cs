using Airlock.Content;
using Airlock.Oci;
using Airlock.Registry.PullThrough;

namespace Airlock.Cluster.Peers;

/// <summary>Where a blob is fetched from: a peer (its name and <c>host:port</c>) or, with no endpoint, the registry.</summary>
internal sealed record PeerSource(string Name, string? Endpoint)
{
    public static readonly PeerSource Registry = new("registry", null);

    public bool IsRegistry => Endpoint is null;

    public override string ToString() => IsRegistry ? "the registry" : $"peer {Name} ({Endpoint})";
}

/// <summary>One try of one source: the pull-through cache's single-flight download (<see cref="BlobFetch"/>) into the node's store.</summary>
internal sealed record TransferAttempt(BlobFetch Fetch, PeerSource Source);

/// <summary>
/// Getting one blob into this node's store: its sources are tried in order (peers, then the registry), each as a
/// <see cref="BlobFetch"/> — the pull-through cache's download, hashed as it is written, that late readers follow in its
/// growing temp file and that stores nothing whose digest does not match. Every request for the digest on this node
/// (containerd's through the node mirror, peers' through the peer server) shares the one transfer.
/// </summary>
internal sealed class PeerTransfer(Digest digest, string registry, string repository)
{
    private readonly TaskCompletionSource<PeerSource> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<TransferAttempt> _fromRegistry = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile TransferAttempt? _current;

    public Digest Digest => digest;

    public string Registry => registry;

    public string Repository => repository;

    /// <summary>The source that delivered the verified, stored blob; fails when every source failed.</summary>
    public Task<PeerSource> Completion => _done.Task;

    /// <summary>Completes when the registry is being asked (its download may be read while it arrives).</summary>
    public Task<TransferAttempt> RegistryAttempt => _fromRegistry.Task;

    /// <summary>The download under way, or null between tries.</summary>
    public TransferAttempt? Current => _current;

    /// <summary>
    /// Tries <paramref name="plan"/> in order until one source's bytes match the digest and are stored; reports each
    /// failed source to <paramref name="failed"/> (it is logged and skipped for a while).
    /// </summary>
    public async Task RunAsync(IRegistryStore storage, IReadOnlyList<PeerSource> plan, Func<PeerSource, CancellationToken, Task<Stream>> open,
        Action<PeerSource, Exception> failed, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (var source in plan)
        {
            var fetch = new BlobFetch(digest);
            var attempt = new TransferAttempt(fetch, source);
            _current = attempt;
            if (source.IsRegistry)
            {
                _fromRegistry.TrySetResult(attempt);
            }

            await fetch.RunAsync(storage, ct => open(source, ct), () => Task.CompletedTask, cancellationToken).ConfigureAwait(false);
            _current = null;
            if (fetch.Completion.IsCompletedSuccessfully)
            {
                _done.TrySetResult(source);
                _fromRegistry.TrySetCanceled(CancellationToken.None);
                return;
            }

            var error = fetch.Completion.Exception?.GetBaseException() ?? new IOException("the download ended without a result");
            failures.Add($"{source}: {error.Message}");
            failed(source, error);
            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }
        }

        var all = new IOException($"blob {digest} of {registry}/{repository}: every source failed: {string.Join("; ", failures)}");
        _done.TrySetException(all);
        _fromRegistry.TrySetException(all);
    }
}
