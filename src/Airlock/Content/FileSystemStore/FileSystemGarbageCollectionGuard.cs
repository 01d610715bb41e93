using System.Collections.Concurrent;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// The <see cref="IGarbageCollectionGuard"/> of a data directory that several processes may open
/// (<c>airlock registry gc</c> beside <c>airlock registry</c>). Each lease is two locks: an in-process one (a count
/// and a gate) and a cross-process <c>flock(2)</c> on <see cref="StoreLayout.ReferenceLock"/>, shared for references
/// and exclusive for deletions, each on its own open file so threads and processes are alike. One collection at a
/// time holds <see cref="StoreLayout.CollectorLock"/> exclusively. While one runs, every digest noted is recorded in
/// memory and, for a collector in another process, in the <see cref="ReferenceJournal"/>.
/// </summary>
/// <remarks>
/// containerd's metadata store lets commits take its write lock shared while the collector holds it exclusively for
/// mark and sweep, which is short there because the mark reads one bolt database; here the mark walks files, so the
/// exclusive hold is cut to one deletion and the journal stands in for it during the mark.
/// </remarks>
public sealed class FileSystemGarbageCollectionGuard(StoreLayout layout) : IGarbageCollectionGuard
{
    private readonly StoreLayout _layout = layout;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _references;
    private volatile ConcurrentDictionary<Digest, byte>? _markedDuringCollection;

    public async ValueTask<IReferenceLease> EnterReferenceAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _references);
        _gate.Release();
        try
        {
            // Waits only while a collector in another process deletes (one item at a time).
            var shared = await FileLock.AcquireAsync(_layout.ReferenceLock, exclusive: false, cancellationToken).ConfigureAwait(false);
            return new ReferenceLease(this, shared);
        }
        catch
        {
            Interlocked.Decrement(ref _references);
            throw;
        }
    }

    public async ValueTask<ICollectionRun?> TryBeginCollectionAsync(CancellationToken cancellationToken)
    {
        var collecting = FileLock.TryAcquire(_layout.CollectorLock, exclusive: true);
        if (collecting is null)
        {
            return null;
        }

        try
        {
            var journal = new ReferenceJournal(_layout.ReferenceJournal);
            ConcurrentDictionary<Digest, byte> marks;
            await using (await EnterSweepAsync(run: null, cancellationToken).ConfigureAwait(false))
            {
                marks = new ConcurrentDictionary<Digest, byte>();
                _markedDuringCollection = marks;
                journal.Begin();
            }

            return new CollectionRun(this, collecting, journal, marks);
        }
        catch
        {
            collecting.Dispose();
            throw;
        }
    }

    /// <summary>Excludes references: waits for those in flight here, then for those of other processes.</summary>
    private async ValueTask<SweepLease> EnterSweepAsync(CollectionRun? run, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            while (Volatile.Read(ref _references) > 0)
            {
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            }

            var exclusive = await FileLock.AcquireAsync(_layout.ReferenceLock, exclusive: true, cancellationToken).ConfigureAwait(false);
            return new SweepLease(this, exclusive, run);
        }
        catch
        {
            _gate.Release();
            throw;
        }
    }

    private sealed class ReferenceLease(FileSystemGarbageCollectionGuard owner, FileLock shared) : IReferenceLease
    {
        private int _disposed;

        public ValueTask NoteReferencedAsync(Digest digest, CancellationToken cancellationToken)
        {
            owner._markedDuringCollection?.TryAdd(digest, 0);
            ReferenceJournal.Append(owner._layout.ReferenceJournal, digest);
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                shared.Dispose();
                Interlocked.Decrement(ref owner._references);
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class SweepLease(FileSystemGarbageCollectionGuard owner, FileLock exclusive, CollectionRun? run) : ISweepLease
    {
        private int _disposed;

        public ValueTask<bool> ReferencedSinceBeginAsync(Digest digest, CancellationToken cancellationToken) =>
            ValueTask.FromResult((run ?? throw new InvalidOperationException("no collection is running")).ReferencedSinceBegin(digest));

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                exclusive.Dispose();
                owner._gate.Release();
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class CollectionRun(FileSystemGarbageCollectionGuard owner, FileLock collecting, ReferenceJournal journal, ConcurrentDictionary<Digest, byte> marks) : ICollectionRun
    {
        private readonly HashSet<Digest> _journaled = [];

        public async ValueTask<ISweepLease> EnterSweepAsync(CancellationToken cancellationToken) =>
            await owner.EnterSweepAsync(this, cancellationToken).ConfigureAwait(false);

        // Read holding the exclusive lease, so every append to the journal is complete.
        public bool ReferencedSinceBegin(Digest digest)
        {
            journal.ReadNew(_journaled);
            return marks.ContainsKey(digest) || _journaled.Contains(digest);
        }

        public ValueTask DisposeAsync()
        {
            owner._markedDuringCollection = null;
            journal.End();
            collecting.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
