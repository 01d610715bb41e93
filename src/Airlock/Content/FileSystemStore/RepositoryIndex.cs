using System.Collections.Immutable;
using System.Diagnostics;
using System.IO.Enumeration;
using System.IO.Hashing;
using System.Text;
using Airlock.IO;
using Airlock.Oci;
using Microsoft.Extensions.Logging;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// The ordered index of a data directory's repositories and of each repository's tags, so a catalog or tags page is a
/// binary search and a copy of the page rather than a walk and sort of the tree. It is derived data: the tree under
/// <c>repositories/</c> stays the truth, every name a page lists is checked against it (a name the tree lacks is
/// skipped, so the index can hold too much but is never trusted over the tree), and the index is rebuilt from the tree
/// when it is missing or damaged, after a process that had it open died, and reconciled with it at every collection.
/// </summary>
/// <remarks>
/// <para>On disk (<see cref="StoreLayout.IndexDirectory"/>): a <see cref="IndexSnapshot"/> of sorted keys and an
/// <see cref="IndexJournal"/> of the changes since, which every process serving the store appends to and reads
/// before it answers (one <c>statx</c> and a read of what is new), so each sees the others' writes once they returned.
/// In memory: the snapshot's keys packed in two arrays, plus the journal's changes as an immutable sorted set of added
/// keys and a set of removed ones, swapped whole, so readers take no lock. When the journal holds more changes than a
/// quarter of the snapshot, one process folds it into a new snapshot (a compaction: amortised, each change is
/// rewritten a bounded number of times).</para>
/// <para>Why the index can only hold too much, never too little: a write that creates a repository or a tag records it
/// in the journal <i>before</i> it changes the tree, and a deletion records it <i>after</i>, both holding the
/// repository's lock (<see cref="StoreLayout.RepositoryLock"/>: shared to create, exclusive to delete), so a deletion and
/// a creation of the same name never interleave. A process that dies between the two steps leaves a name the tree
/// lacks, which pages skip and the next start or collection removes. Only a power cut can lose journal records the
/// tree outlived; every process holds a session lock file while it has the store open, and one left unlocked makes the
/// next process that opens the store alone rebuild the index from the tree.</para>
/// </remarks>
internal sealed class RepositoryIndex : IAsyncDisposable
{
    /// <summary>How many lock files the repositories share (by a hash of the name).</summary>
    internal const int RepositoryLockCount = 64;

    // A page asks for its names in batches of at most this many keys, to check them against the tree outside any lock.
    private const int Batch = 1024;

    private readonly StoreLayout _layout;
    private readonly ILogger _logger;
    private readonly Lock _sync = new();
    private volatile IndexState? _state;
    private string _dropped = "it was not loaded";
    private IndexJournal? _journal;
    private FileLock? _session;
    private string? _sessionPath;
    private Task _maintenance = Task.CompletedTask;
    private int _maintaining;

    private RepositoryIndex(StoreLayout layout, ILogger logger)
    {
        _layout = layout;
        _logger = logger;
    }

    /// <summary>Journal records that make a compaction worth it, at least (beside a quarter of the snapshot's keys).</summary>
    internal int CompactionMinimum { get; set; } = 4096;

    /// <summary>
    /// Called between the two steps of an index write: after a creation was recorded and before the tree has it
    /// (<c>created KEY…</c>), and after a deletion left the tree and before it is recorded (<c>deleted KEY…</c>). Tests
    /// hold a write there to crash the process at that point.
    /// </summary>
    internal Func<string, ValueTask>? WriteGate { get; set; }

    /// <summary>
    /// Opens the data directory's index, rebuilding it from the tree when it is missing or cannot be trusted. With
    /// <paramref name="alone"/> (no other process has the store open), a session lock file left unlocked (a process that
    /// died with the store open) also makes it rebuild, since a power cut may have cost journal records.
    /// </summary>
    public static RepositoryIndex Open(StoreLayout layout, bool alone, ILogger logger)
    {
        Directory.CreateDirectory(layout.IndexSessionsDirectory);
        Directory.CreateDirectory(Path.GetDirectoryName(layout.RepositoryLock(0))!);
        var index = new RepositoryIndex(layout, logger);
        var died = alone ? RemoveDeadSessions(layout, logger) : 0;
        index.StartSession();
        try
        {
            if (died > 0)
            {
                index.RebuildBlocking($"{died} process(es) that had the store open ended without closing it");
            }
            else
            {
                string? problem;
                using (FileLock.Acquire(layout.IndexLock, exclusive: false))
                {
                    problem = index.TryLoad();
                }

                if (problem is not null)
                {
                    index.RebuildBlocking(problem);
                }
            }
        }
        catch
        {
            index.EndSession();
            throw;
        }

        return index;
    }

    // ---- Reads ----

    /// <summary>Up to <paramref name="limit"/> repositories after <paramref name="last"/> that the tree holds, in ordinal order.</summary>
    public async ValueTask<ListingPage> ListRepositoriesAsync(string? last, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var state = await CurrentAsync(cancellationToken).ConfigureAwait(false);
        return Page(state, IndexKeys.RepositoryPrefix, last, limit, name => ImageReference.IsValidRepository(name) && _layout.IsRepository(name));
    }

    /// <summary>Up to <paramref name="limit"/> of the repository's tags after <paramref name="last"/> that the tree holds, in ordinal order.</summary>
    public async ValueTask<ListingPage> ListTagsAsync(string repository, string? last, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var state = await CurrentAsync(cancellationToken).ConfigureAwait(false);
        return Page(state, IndexKeys.TagPrefix(repository), last, limit, tag => ImageReference.IsValidTag(tag) && File.Exists(_layout.Tag(repository, tag)));
    }

    /// <summary>
    /// The repositories with an authenticated-only mark, in ordinal order, unchecked against the tree: a mark is recorded
    /// before the tree gets it and dropped after the tree lost it, so the index may name a repository whose mark never
    /// landed (it is then treated as marked: fail closed), never miss one the tree holds.
    /// </summary>
    public async ValueTask<IReadOnlyList<string>> ListMarkedAsync(CancellationToken cancellationToken) =>
        [.. Keys(await CurrentAsync(cancellationToken).ConfigureAwait(false), IndexKeys.MarkPrefix, IndexKeys.MarkPrefix, int.MaxValue).Select(key => key[1..])];

    /// <summary>Every key the index holds, unchecked, in order (what tests compare with the tree).</summary>
    internal async ValueTask<IReadOnlyList<string>> ReadKeysAsync(CancellationToken cancellationToken) =>
        [.. Keys(await CurrentAsync(cancellationToken).ConfigureAwait(false), string.Empty, string.Empty, int.MaxValue)];

    // ---- Writes ----

    /// <summary>
    /// Holds the repository for a write to the tree: shared for writes that may create it or a tag (which then call
    /// <see cref="RepositoryWrite.WillHoldAsync"/> before they write), exclusive for deletions (which call
    /// <see cref="RepositoryWrite.LostTagAsync"/> or <see cref="RepositoryWrite.LostRepositoryAsync"/> after).
    /// </summary>
    public async ValueTask<RepositoryWrite> EnterAsync(string repository, bool exclusive, CancellationToken cancellationToken)
    {
        var held = await FileLock.AcquireAsync(_layout.RepositoryLock(LockOf(repository)), exclusive, cancellationToken, createDirectory: false).ConfigureAwait(false);
        return new RepositoryWrite(this, repository, held);
    }

    /// <summary>
    /// Compares the index with the tree and records what differs (names the tree gained behind the index's back, e.g. a
    /// restored backup, and names it lost), each one re-checked holding its repository's lock; safe while other
    /// processes serve and write. Returns how many keys it added or removed, and the repositories the tree held (what a
    /// collection marks, so it walks the tree once).
    /// </summary>
    public async ValueTask<ReconciledListings> ReconcileAsync(CancellationToken cancellationToken)
    {
        var tree = ReadTree(_layout);
        var repositories = new List<string>();
        foreach (var key in tree)
        {
            if (key[0] == IndexKeys.RepositoryKind)
            {
                repositories.Add(key[1..]);
            }
        }

        var indexed = Keys(await CurrentAsync(cancellationToken).ConfigureAwait(false), string.Empty, string.Empty, int.MaxValue);
        var differing = new List<string>();
        int t = 0, i = 0;
        while (t < tree.Count || i < indexed.Count)
        {
            var order = t == tree.Count ? 1 : i == indexed.Count ? -1 : string.CompareOrdinal(tree[t], indexed[i]);
            if (order == 0)
            {
                t++;
                i++;
            }
            else
            {
                differing.Add(order < 0 ? tree[t++] : indexed[i++]);
            }
        }

        var changed = 0;
        foreach (var key in differing)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var repository = IndexKeys.RepositoryOf(key);
            if (!ImageReference.IsValidRepository(repository))
            {
                continue;
            }

            var write = await EnterAsync(repository, exclusive: true, cancellationToken).ConfigureAwait(false);
            await using (write.ConfigureAwait(false))
            {
                var state = await CurrentForWriteAsync(cancellationToken).ConfigureAwait(false);
                var inTree = key[0] switch
                {
                    IndexKeys.TagKind => TagInTree(key),
                    IndexKeys.MarkKind => File.Exists(_layout.AuthenticatedOnly(repository)),
                    _ => _layout.IsRepository(repository),
                };
                if (state is not null && inTree != state.Contains(key))
                {
                    await AppendAsync([(inTree, key)], cancellationToken).ConfigureAwait(false);
                    changed++;
                }
            }
        }

        if (changed > 0)
        {
            _logger.LogInformation("Reconciled the repository index of {Directory} with the tree: {Count} names added or removed", _layout.Root, changed);
        }

        return new ReconciledListings(changed, repositories);
    }

    /// <summary>Folds the journal into a new snapshot now (normally done in the background once the journal is long).</summary>
    internal async Task CompactAsync(CancellationToken cancellationToken)
    {
        using var exclusive = await FileLock.AcquireAsync(_layout.IndexLock, exclusive: true, cancellationToken, createDirectory: false).ConfigureAwait(false);
        if (TryRefresh() != Freshness.Current)
        {
            return;
        }

        var state = _state!;
        var keys = Keys(state, string.Empty, string.Empty, int.MaxValue);
        var generation = state.Snapshot.Generation + 1;
        Install(generation, keys);
        _logger.LogDebug("Compacted the repository index of {Directory}: {Records} journal records into {Keys} keys", _layout.Root, state.Records, keys.Count);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _maintenance.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or IndexDamagedException)
        {
            // Logged where it happened; the next process repairs what is left.
        }

        lock (_sync)
        {
            _journal?.Dispose();
            _journal = null;
        }

        EndSession();
    }

    // ---- State ----

    /// <summary>The state with every record appended so far, waiting for a rebuild when the index had to be dropped.</summary>
    private async ValueTask<IndexState> CurrentAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await CurrentForWriteAsync(cancellationToken).ConfigureAwait(false) is { } state)
            {
                return state;
            }

            // Unusable until the rebuild that TryRefresh started is done (a reader holds no repository lock, so it may wait).
            await _maintenance.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// As <see cref="CurrentAsync"/>, but null instead of waiting when the index is being rebuilt: a writer holds its
    /// repository's lock, which the rebuild needs, and need not record anything then (the rebuild reads the tree after
    /// the writer is done with it).
    /// </summary>
    private async ValueTask<IndexState?> CurrentForWriteAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            switch (TryRefresh())
            {
                case Freshness.Current:
                    return _state;
                case Freshness.Replaced:
                    string? problem;
                    using (await FileLock.AcquireAsync(_layout.IndexLock, exclusive: false, cancellationToken, createDirectory: false).ConfigureAwait(false))
                    {
                        problem = TryLoad();
                    }

                    if (problem is null)
                    {
                        continue;
                    }

                    StartRebuild(problem);
                    return null;
                default:
                    // Dropped: a rebuild runs or must be started (a compaction that was running when it was dropped stops).
                    StartRebuild(_dropped);
                    return null;
            }
        }
    }

    private Freshness TryRefresh()
    {
        lock (_sync)
        {
            if (_state is not { } state || _journal is null)
            {
                return Freshness.Dropped;
            }

            if (!_journal.IsAt(_layout.IndexJournal))
            {
                return Freshness.Replaced;
            }

            try
            {
                var added = state.Added.ToBuilder();
                var removed = state.Removed.ToBuilder();
                var records = _journal.ReadNew((present, key) => Apply(state.Snapshot, added, removed, present, key));
                if (records > 0)
                {
                    _state = state with { Added = added.ToImmutable(), Removed = removed.ToImmutable(), Records = state.Records + records };
                    ScheduleCompaction(_state);
                }

                return Freshness.Current;
            }
            catch (IndexDamagedException ex)
            {
                _dropped = ex.Message;
                _state = null;
                return Freshness.Dropped;
            }
        }
    }

    /// <summary>Loads the snapshot and journal on disk (the caller holds the index lock); null when done, else why they cannot be used.</summary>
    private string? TryLoad()
    {
        IndexJournal? journal = null;
        try
        {
            var snapshot = IndexSnapshot.Read(_layout.IndexSnapshot);
            journal = IndexJournal.Open(_layout.IndexJournal);
            if (snapshot is null || journal is null)
            {
                journal?.Dispose();
                return snapshot is null ? "it has no snapshot" : "it has no journal";
            }

            // One generation behind: a compaction stopped between its two renames; replaying is then harmless.
            if (journal.Generation != snapshot.Generation && journal.Generation != snapshot.Generation - 1)
            {
                journal.Dispose();
                return $"its journal follows snapshot {journal.Generation}, not {snapshot.Generation}";
            }

            var added = ImmutableSortedSet.CreateBuilder<string>(StringComparer.Ordinal);
            var removed = ImmutableHashSet.CreateBuilder<string>(StringComparer.Ordinal);
            var records = journal.ReadNew((present, key) => Apply(snapshot, added, removed, present, key));
            lock (_sync)
            {
                _journal?.Dispose();
                _journal = journal;
                _state = new IndexState(snapshot, added.ToImmutable(), removed.ToImmutable(), records);
            }

            return null;
        }
        catch (IndexDamagedException ex)
        {
            journal?.Dispose();
            return ex.Message;
        }
    }

    private static void Apply(IndexSnapshot snapshot, ImmutableSortedSet<string>.Builder added, ImmutableHashSet<string>.Builder removed, bool present, string key)
    {
        if (present)
        {
            removed.Remove(key);
            if (!snapshot.Contains(key))
            {
                added.Add(key);
            }
        }
        else
        {
            added.Remove(key);
            if (snapshot.Contains(key))
            {
                removed.Add(key);
            }
        }
    }

    /// <summary>Writes <paramref name="keys"/> as the snapshot of <paramref name="generation"/> with an empty journal, and loads it (the caller holds the index lock exclusively).</summary>
    private void Install(long generation, IReadOnlyList<string> keys)
    {
        // Snapshot first: a crash between the two renames leaves the new snapshot with the old journal, whose replay
        // over it changes nothing (every record in it is already folded in, in order).
        IndexSnapshot.Write(_layout.IndexSnapshot, generation, keys);
        IndexJournal.Create(_layout.IndexJournal, generation);
        var journal = IndexJournal.Open(_layout.IndexJournal) ?? throw new IOException($"{_layout.IndexJournal} vanished as it was written");
        lock (_sync)
        {
            _journal?.Dispose();
            _journal = journal;
            _state = new IndexState(IndexSnapshot.From(generation, keys), ImmutableSortedSet.Create<string>(StringComparer.Ordinal), ImmutableHashSet.Create<string>(StringComparer.Ordinal), 0);
        }
    }

    // ---- Maintenance: compaction and rebuilds run one at a time, in the background ----

    private void ScheduleCompaction(IndexState state)
    {
        if (state.Records > Math.Max(CompactionMinimum, state.Snapshot.Count / 4) && Interlocked.CompareExchange(ref _maintaining, 1, 0) == 0)
        {
            _maintenance = Task.Run(async () =>
            {
                try
                {
                    await CompactAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    _logger.LogWarning(ex, "Could not compact the repository index of {Directory}; the journal keeps growing until a compaction succeeds", _layout.Root);
                }
                finally
                {
                    Volatile.Write(ref _maintaining, 0);
                }
            });
        }
    }

    /// <summary>Drops the state and starts a rebuild, unless one runs (a compaction running instead finds the state dropped and stops; the next reader or writer then starts the rebuild).</summary>
    private void StartRebuild(string reason)
    {
        _dropped = reason;
        _state = null;
        if (Interlocked.CompareExchange(ref _maintaining, 1, 0) == 0)
        {
            _maintenance = Task.Run(async () =>
            {
                try
                {
                    await RebuildAsync(reason).ConfigureAwait(false);
                }
                finally
                {
                    Volatile.Write(ref _maintaining, 0);
                }
            });
        }
    }

    /// <summary>
    /// Replaces the index with what the tree holds. Every repository lock is held exclusively while the tree is read, so
    /// no write is half done (recorded and not yet in the tree), then the index lock; another process may have rebuilt
    /// it meanwhile, which is then loaded instead.
    /// </summary>
    private async Task RebuildAsync(string reason)
    {
        var held = new List<FileLock>(RepositoryLockCount + 1);
        try
        {
            for (var stripe = 0; stripe < RepositoryLockCount; stripe++)
            {
                held.Add(await FileLock.AcquireAsync(_layout.RepositoryLock(stripe), exclusive: true, CancellationToken.None, createDirectory: false).ConfigureAwait(false));
            }

            held.Add(await FileLock.AcquireAsync(_layout.IndexLock, exclusive: true, CancellationToken.None, createDirectory: false).ConfigureAwait(false));
            if (TryLoad() is not null)
            {
                Rebuild(reason);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogError(ex, "Could not rebuild the repository index of {Directory} from the tree ({Reason}); listings wait until it can be", _layout.Root, reason);
            throw;
        }
        finally
        {
            foreach (var fileLock in held)
            {
                fileLock.Dispose();
            }
        }
    }

    private void RebuildBlocking(string reason)
    {
        var held = new List<FileLock>(RepositoryLockCount + 1);
        try
        {
            for (var stripe = 0; stripe < RepositoryLockCount; stripe++)
            {
                held.Add(FileLock.Acquire(_layout.RepositoryLock(stripe), exclusive: true));
            }

            held.Add(FileLock.Acquire(_layout.IndexLock, exclusive: true));
            Rebuild(reason);
        }
        finally
        {
            foreach (var fileLock in held)
            {
                fileLock.Dispose();
            }
        }
    }

    private void Rebuild(string reason)
    {
        var clock = Stopwatch.StartNew();
        var keys = ReadTree(_layout);
        long generation;
        try
        {
            generation = (IndexSnapshot.Read(_layout.IndexSnapshot)?.Generation ?? 0) + 1;
        }
        catch (IndexDamagedException)
        {
            generation = 1;
        }

        // Past whatever journal is there too, so the old journal can never pass for this snapshot's.
        using (var old = TryOpenJournal())
        {
            generation = Math.Max(generation, (old?.Generation ?? 0) + 2);
        }

        Install(generation, keys);
        _logger.LogInformation(
            "Rebuilt the repository index of {Directory} from the tree because {Reason}: {Keys} repositories and tags in {Elapsed} ms",
            _layout.Root, reason, keys.Count, clock.ElapsedMilliseconds);
    }

    private IndexJournal? TryOpenJournal()
    {
        try
        {
            return IndexJournal.Open(_layout.IndexJournal);
        }
        catch (IndexDamagedException)
        {
            return null;
        }
    }

    // ---- Sessions: who has the store open ----

    private void StartSession()
    {
        _sessionPath = Path.Combine(_layout.IndexSessionsDirectory, Guid.NewGuid().ToString("N"));
        _session = FileLock.TryAcquire(_sessionPath, exclusive: true, createDirectory: false)
            ?? throw new IOException($"cannot lock the new session file {_sessionPath}");

        // On disk before this process writes anything, so a power cut that follows is noticed.
        FileSystemDurability.FsyncDirectory(_layout.IndexSessionsDirectory);
    }

    private void EndSession()
    {
        if (_sessionPath is not null)
        {
            File.Delete(_sessionPath);
        }

        _session?.Dispose();
        _session = null;
    }

    /// <summary>Removes the session files nobody holds (their process died); returns how many there were.</summary>
    private static int RemoveDeadSessions(StoreLayout layout, ILogger logger)
    {
        var dead = 0;
        foreach (var path in Directory.EnumerateFiles(layout.IndexSessionsDirectory))
        {
            using var held = FileLock.TryAcquire(path, exclusive: true, createDirectory: false);
            if (held is not null)
            {
                File.Delete(path);
                dead++;
            }
        }

        if (dead > 0)
        {
            logger.LogWarning("{Count} process(es) ended without closing the registry store in {Directory}; its index is rebuilt from the tree", dead, layout.Root);
        }

        return dead;
    }

    // ---- Pages ----

    private static ListingPage Page(IndexState state, string prefix, string? last, int limit, Func<string, bool> inTree)
    {
        var names = new List<string>(Math.Min(limit, Batch));
        var after = prefix + (last ?? string.Empty);
        while (true)
        {
            var keys = Keys(state, prefix, after, (int)Math.Min(Batch, (long)limit - names.Count + 1));
            if (keys.Count == 0)
            {
                return new ListingPage(names, false);
            }

            foreach (var key in keys)
            {
                var name = key[prefix.Length..];
                if (!inTree(name))
                {
                    // Recorded before a write that never reached the tree, or after a deletion: never listed.
                    continue;
                }

                if (names.Count == limit)
                {
                    return new ListingPage(names, true);
                }

                names.Add(name);
            }

            after = keys[^1];
        }
    }

    /// <summary>Up to <paramref name="count"/> keys starting with <paramref name="prefix"/> that sort after <paramref name="after"/>: the snapshot's and the journal's, merged.</summary>
    private static List<string> Keys(IndexState state, string prefix, string after, int count)
    {
        var (snapshot, added, removed, _) = state;
        var result = new List<string>(Math.Min(count, Batch));
        var s = snapshot.UpperBound(after);
        var found = added.IndexOf(after);
        var a = found >= 0 ? found + 1 : ~found;
        while (result.Count < count)
        {
            var fromSnapshot = s < snapshot.Count && snapshot.StartsWith(s, prefix) ? snapshot.KeyAt(s) : null;
            if (fromSnapshot is not null && removed.Contains(fromSnapshot))
            {
                s++;
                continue;
            }

            var fromJournal = a < added.Count && added[a].StartsWith(prefix, StringComparison.Ordinal) ? added[a] : null;
            if (fromSnapshot is null && fromJournal is null)
            {
                break;
            }

            if (fromJournal is null || (fromSnapshot is not null && string.CompareOrdinal(fromSnapshot, fromJournal) < 0))
            {
                result.Add(fromSnapshot!);
                s++;
            }
            else
            {
                result.Add(fromJournal);
                a++;
            }
        }

        return result;
    }

    // ---- The tree ----

    private bool TagInTree(string key)
    {
        var colon = key.IndexOf(':', StringComparison.Ordinal);
        var tag = key[(colon + 1)..];
        return ImageReference.IsValidTag(tag) && File.Exists(_layout.Tag(key[1..colon], tag));
    }

    /// <summary>Every repository, mark and tag the tree holds, as sorted index keys: one read of each folder of names and of each tag folder.</summary>
    internal static List<string> ReadTree(StoreLayout layout)
    {
        var keys = new List<string>();
        var root = layout.RepositoriesDirectory;
        if (Directory.Exists(root))
        {
            // The top-level folders are read several at a time: a rebuild, and a collection's reconcile, read every
            // repository's folders, and one small read at a time leaves the other cores idle. The root itself is no
            // repository (an empty name), so its own entries need no look.
            var top = new List<string>();
            foreach (var (entry, isDirectory) in Entries(root))
            {
                if (isDirectory && !entry.StartsWith('_'))
                {
                    top.Add(entry);
                }
            }

            var parts = new List<string>[top.Count];
            Parallel.For(0, top.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount) }, i =>
            {
                var part = new List<string>();
                ReadFolder(Path.Combine(root, top[i]), top[i], part);
                parts[i] = part;
            });
            foreach (var part in parts)
            {
                keys.AddRange(part);
            }
        }

        keys.Sort(StringComparer.Ordinal);
        return keys;
    }

    private static void ReadFolder(string folder, string name, List<string> keys)
    {
        var isRepository = false;
        var marked = false;
        var children = new List<string>();
        foreach (var (entry, isDirectory) in Entries(folder))
        {
            if (entry.StartsWith('_'))
            {
                isRepository |= StoreLayout.RepositoryEntries.Contains(entry);
                marked |= entry == StoreLayout.AuthenticatedOnlyMarker;
            }
            else if (isDirectory)
            {
                children.Add(entry);
            }
        }

        if (isRepository && ImageReference.IsValidRepository(name))
        {
            keys.Add(IndexKeys.Repository(name));
            if (marked)
            {
                keys.Add(IndexKeys.Mark(name));
            }

            var tags = Path.Combine(folder, "_manifests", "tags");
            if (Directory.Exists(tags))
            {
                foreach (var (tag, isDirectory) in Entries(tags))
                {
                    if (!isDirectory && ImageReference.IsValidTag(tag))
                    {
                        keys.Add(IndexKeys.Tag(name, tag));
                    }
                }
            }
        }

        foreach (var child in children)
        {
            ReadFolder(Path.Combine(folder, child), name.Length == 0 ? child : name + "/" + child, keys);
        }
    }

    private static FileSystemEnumerable<(string Name, bool IsDirectory)> Entries(string folder) =>
        new(folder, static (ref entry) => (entry.FileName.ToString(), entry.IsDirectory), new EnumerationOptions { IgnoreInaccessible = true });

    private static int LockOf(string repository) =>
        (int)(Crc32.HashToUInt32(Encoding.ASCII.GetBytes(repository)) % RepositoryLockCount);

    private async ValueTask AppendAsync(IReadOnlyList<(bool Present, string Key)> changes, CancellationToken cancellationToken)
    {
        var records = IndexJournal.Encode(changes);
        using (await FileLock.AcquireAsync(_layout.IndexLock, exclusive: false, cancellationToken, createDirectory: false).ConfigureAwait(false))
        {
            // Under the index lock no compaction can replace the journal between this check and the append.
            IndexJournal? journal;
            lock (_sync)
            {
                journal = _journal is { } open && open.IsAt(_layout.IndexJournal) ? open : null;
            }

            if (journal is null)
            {
                if (TryLoad() is { } problem)
                {
                    // A rebuild (started here) reads the tree after this write is done with it.
                    StartRebuild(problem);
                    return;
                }

                lock (_sync)
                {
                    journal = _journal!;
                }
            }

            try
            {
                journal.Append(records);
            }
            catch (ObjectDisposedException)
            {
                // Replaced by a reload in this process meanwhile (the journal file itself is still the current one).
                lock (_sync)
                {
                    journal = _journal ?? throw new ObjectDisposedException(nameof(RepositoryIndex));
                }

                journal.Append(records);
            }
        }
    }

    private enum Freshness
    {
        Current,
        Replaced,
        Dropped,
    }

    private sealed record IndexState(IndexSnapshot Snapshot, ImmutableSortedSet<string> Added, ImmutableHashSet<string> Removed, int Records)
    {
        public bool Contains(string key) => Added.Contains(key) || (!Removed.Contains(key) && Snapshot.Contains(key));
    }

    /// <summary>A write to one repository's part of the tree, holding its lock (see <see cref="EnterAsync"/>).</summary>
    internal sealed class RepositoryWrite(RepositoryIndex index, string repository, FileLock held) : IAsyncDisposable
    {
        /// <summary>Records the repository (and <paramref name="tag"/>, or its authenticated-only mark) before the tree gets them, unless the index has them.</summary>
        public async ValueTask WillHoldAsync(string? tag, bool mark, CancellationToken cancellationToken)
        {
            var state = await index.CurrentForWriteAsync(cancellationToken).ConfigureAwait(false);
            if (state is null)
            {
                return;
            }

            var changes = new List<(bool, string)>(2);
            var repositoryKey = IndexKeys.Repository(repository);
            if (!state.Contains(repositoryKey))
            {
                changes.Add((true, repositoryKey));
            }

            if (tag is not null && IndexKeys.Tag(repository, tag) is var tagKey && !state.Contains(tagKey))
            {
                changes.Add((true, tagKey));
            }

            if (mark && !state.Contains(IndexKeys.Mark(repository)))
            {
                changes.Add((true, IndexKeys.Mark(repository)));
            }

            if (changes.Count > 0)
            {
                await index.AppendAsync(changes, cancellationToken).ConfigureAwait(false);
                await Gate("created", changes).ConfigureAwait(false);
            }
        }

        /// <summary>Records that the tag left the tree (when the index has it).</summary>
        public ValueTask LostTagAsync(string tag, CancellationToken cancellationToken) =>
            LostAsync(state => state.Contains(IndexKeys.Tag(repository, tag)) ? [(false, IndexKeys.Tag(repository, tag))] : [], cancellationToken);

        /// <summary>Records that the repository left the tree, with whatever tags and mark of it the index still has.</summary>
        public ValueTask LostRepositoryAsync(CancellationToken cancellationToken) =>
            LostAsync(
                state =>
                {
                    var changes = Keys(state, IndexKeys.TagPrefix(repository), IndexKeys.TagPrefix(repository), int.MaxValue).Select(k => (false, k)).ToList();
                    if (state.Contains(IndexKeys.Repository(repository)))
                    {
                        changes.Add((false, IndexKeys.Repository(repository)));
                    }

                    if (state.Contains(IndexKeys.Mark(repository)))
                    {
                        changes.Add((false, IndexKeys.Mark(repository)));
                    }

                    return changes;
                },
                cancellationToken);

        public ValueTask DisposeAsync()
        {
            held.Dispose();
            return ValueTask.CompletedTask;
        }

        private async ValueTask LostAsync(Func<IndexState, List<(bool, string)>> changesOf, CancellationToken cancellationToken)
        {
            var state = await index.CurrentForWriteAsync(cancellationToken).ConfigureAwait(false);
            if (state is not null && changesOf(state) is { Count: > 0 } changes)
            {
                await Gate("deleted", changes).ConfigureAwait(false);
                await index.AppendAsync(changes, cancellationToken).ConfigureAwait(false);
            }
        }

        private ValueTask Gate(string step, List<(bool, string)> changes) =>
            index.WriteGate?.Invoke(step + " " + string.Join(' ', changes.Select(c => c.Item2))) ?? ValueTask.CompletedTask;
    }
}
