using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// What lets garbage collection run while the store is served, by this process or others (other processes on the
/// same data directory, other replicas on the same shared store): a readers-writer lease between creating references
/// and deleting, the record of what was referenced while a collection marks, and one collection at a time.
/// </summary>
/// <remarks>
/// Why a reference never points at a deleted blob: a reference (committing and linking a blob, mounting it, putting
/// a manifest, setting a tag) is created holding a <see cref="IReferenceLease"/> and only after checking, under it,
/// that what it names exists; a deletion holds an <see cref="ISweepLease"/>, and the two exclude each other. If the
/// deletion came first, the check fails and the reference is refused; if the reference came first, either it was
/// stored before the collection began (which starts excluding references, so nothing is half made then) and the mark
/// sees it, or it was noted with <see cref="IReferenceLease.NoteReferencedAsync"/>, which the sweep reads under its
/// lease before each deletion. Why this shape, against distribution's stop-the-world collection and containerd's
/// leases: docs/storage.md.
/// </remarks>
public interface IGarbageCollectionGuard
{
    /// <summary>Held (shared with other references, excluding sweeps) while checking for and creating a reference.</summary>
    ValueTask<IReferenceLease> EnterReferenceAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Starts a collection: only one runs per store at a time, whichever process or replica runs it (null when one
    /// does). From the moment this returns until the run is disposed every reference noted is recorded for it. A
    /// collector that dies releases the run (a lock the kernel drops, a lease that expires).
    /// </summary>
    ValueTask<ICollectionRun?> TryBeginCollectionAsync(CancellationToken cancellationToken);
}

/// <summary>A reference being created; disposing it lets sweeps in again.</summary>
public interface IReferenceLease : IAsyncDisposable
{
    /// <summary>Records that <paramref name="digest"/> is referenced now, so a collection marking meanwhile keeps it.</summary>
    ValueTask NoteReferencedAsync(Digest digest, CancellationToken cancellationToken);
}

/// <summary>One collection, from the start of its mark to the end of its sweep.</summary>
public interface ICollectionRun : IAsyncDisposable
{
    /// <summary>Excludes references (waiting for those in flight) for one deletion or a short batch of them.</summary>
    ValueTask<ISweepLease> EnterSweepAsync(CancellationToken cancellationToken);
}

/// <summary>A sweep's exclusive hold: nothing is referenced while it is held.</summary>
public interface ISweepLease : IAsyncDisposable
{
    /// <summary>Whether <paramref name="digest"/> was noted as referenced since the collection began (here or elsewhere).</summary>
    ValueTask<bool> ReferencedSinceBeginAsync(Digest digest, CancellationToken cancellationToken);
}
