using System.Collections.Concurrent;
using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// Lets garbage collection run while the registry serves. Anything that creates a reference to a blob
/// (linking it to a repository, putting a manifest) holds a shared "reference" lease; the sweep takes
/// the exclusive lease for each deletion and re-checks there. While a mark phase runs, every digest
/// referenced meanwhile is recorded, so a manifest put after its repository was marked still protects
/// its blobs.
/// </summary>
public sealed class GarbageCollectionGuard
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _references;
    private volatile ConcurrentDictionary<Digest, byte>? _markedDuringCollection;

    /// <summary>Held while creating a reference (link, manifest revision, tag).</summary>
    public async ValueTask<Lease> EnterReferenceAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _references);
        _gate.Release();
        return new Lease(this, exclusive: false);
    }

    /// <summary>Held by the sweep while it re-checks and deletes one item; waits for references in flight.</summary>
    public async ValueTask<Lease> EnterSweepAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (Volatile.Read(ref _references) > 0)
            {
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            _gate.Release();
            throw;
        }

        return new Lease(this, exclusive: true);
    }

    /// <summary>Records a digest referenced while a collection may be marking.</summary>
    public void NoteReferenced(Digest digest) => _markedDuringCollection?.TryAdd(digest, 0);

    internal ConcurrentDictionary<Digest, byte> BeginMark()
    {
        var marks = new ConcurrentDictionary<Digest, byte>();
        _markedDuringCollection = marks;
        return marks;
    }

    internal void EndMark() => _markedDuringCollection = null;

    public readonly struct Lease : IDisposable
    {
        private readonly GarbageCollectionGuard? _owner;
        private readonly bool _exclusive;

        internal Lease(GarbageCollectionGuard owner, bool exclusive)
        {
            _owner = owner;
            _exclusive = exclusive;
        }

        public void Dispose()
        {
            if (_owner is null)
            {
                return;
            }

            if (_exclusive)
            {
                _owner._gate.Release();
            }
            else
            {
                Interlocked.Decrement(ref _owner._references);
            }
        }
    }
}
