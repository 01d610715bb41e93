using System.Collections.Concurrent;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// Lets garbage collection run while the registry serves, in this process or in another one on the same
/// data directory (<c>airlock registry gc</c> beside <c>airlock registry</c>). Anything that creates a
/// reference to a blob (committing and linking it, mounting it, putting a manifest) holds a shared
/// "reference" lease; the sweep takes the exclusive lease for each deletion and re-checks there. Each lease
/// is two locks: an in-process one (a count and a gate) and a cross-process <c>flock(2)</c> on
/// <see cref="StoreLayout.ReferenceLock"/>, shared for references and exclusive for deletions, each on its
/// own open file so threads and processes are alike. While a mark phase runs, every digest referenced
/// meanwhile is recorded in memory and, for a collector in another process, in the
/// <see cref="ReferenceJournal"/>, so a manifest put after its repository was marked still protects its
/// blobs.
/// </summary>
/// <remarks>
/// Why a reference can never point at a deleted blob: a reference is created holding the lock shared and
/// only after checking, under it, that the blob exists (a manifest PUT checks its children; a commit
/// renames the blob into place; a mount checks it). A deletion holds the lock exclusively, so the two never
/// overlap. If the deletion came first, the check fails and the reference is refused
/// (<c>MANIFEST_BLOB_UNKNOWN</c>); if the reference came first, either it was on disk before the mark began
/// (the mark starts under the exclusive lock, so nothing is half done then) and the mark sees it, or it
/// was recorded in the journal, which the sweep reads under the exclusive lock just before each deletion.
/// Compared with the references: distribution's <c>garbage-collect</c> is stop-the-world (the registry
/// must be stopped or read-only while it runs). containerd's metadata store lets commits take its write
/// lock shared while the collector holds it exclusively for mark and sweep, which is short there because
/// the mark reads one bolt database; here the mark walks files, so the exclusive hold is cut to one
/// deletion and the journal stands in for it during the mark. containerd protects content that is not yet
/// referenced with leases the client creates (24 h by default in its Go client); the OCI distribution API
/// has no such thing, so the one thing no lock can know, whether a blob uploaded but not yet referenced
/// will be, is left to age (the grace period, with a floor while a registry serves) and to open upload
/// sessions, see <see cref="GarbageCollector"/>.
/// </remarks>
public sealed class GarbageCollectionGuard(StoreLayout layout)
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
        try
        {
            // Waits only while a collector in another process deletes (one item at a time).
            var shared = await FileLock.AcquireAsync(layout.ReferenceLock, exclusive: false, cancellationToken).ConfigureAwait(false);
            return new Lease(this, shared, exclusive: false);
        }
        catch
        {
            Interlocked.Decrement(ref _references);
            throw;
        }
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

            var exclusive = await FileLock.AcquireAsync(layout.ReferenceLock, exclusive: true, cancellationToken).ConfigureAwait(false);
            return new Lease(this, exclusive, exclusive: true);
        }
        catch
        {
            _gate.Release();
            throw;
        }
    }

    /// <summary>Records a digest referenced while a collection (here or in another process) may be marking; call holding a reference lease.</summary>
    public void NoteReferenced(Digest digest)
    {
        _markedDuringCollection?.TryAdd(digest, 0);
        ReferenceJournal.Append(layout.ReferenceJournal, digest);
    }

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
        private readonly FileLock? _fileLock;
        private readonly bool _exclusive;

        internal Lease(GarbageCollectionGuard owner, FileLock fileLock, bool exclusive)
        {
            _owner = owner;
            _fileLock = fileLock;
            _exclusive = exclusive;
        }

        public void Dispose()
        {
            if (_owner is null)
            {
                return;
            }

            _fileLock?.Dispose();
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
