using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Airlock.Content.FileSystemStore;

/// <summary>What an upload session records on disk besides its data, so it survives a restart.</summary>
public sealed record UploadSessionState(
    [property: JsonPropertyName("repository")] string Repository,
    [property: JsonPropertyName("startedAt")] DateTimeOffset StartedAt);

/// <summary>
/// Chunked upload sessions: <c>uploads/&lt;uuid&gt;/data</c> (the ingest temp file) and <c>state.json</c>.
/// A session's file is open only while a request uses it: between requests the session keeps just its hash
/// state (<see cref="SuspendedIngest"/>), so chunks append without re-hashing, yet thousands of abandoned
/// sessions hold no file descriptors, and a session deleted by a collector in another process leaves no
/// deleted file held open. After a restart the first request re-hashes the file.
/// Requests on one session are serialised by its lease, which also holds the session's lock file shared
/// (<see cref="StoreLayout.UploadLock"/>), so a garbage collector in another process deletes a session only
/// when no request is using it.
/// </summary>
public sealed class UploadSessionStore(StoreLayout layout, TimeProvider time) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private int _slotsAfterLastSweep;

    public string Create(string repository)
    {
        ForgetDeletedSessions();
        var id = Guid.NewGuid().ToString("D");
        Directory.CreateDirectory(layout.UploadDirectory(id));

        // Created up front: creating it later would change the folder's time, which is the session's activity.
        File.WriteAllBytes(layout.UploadLock(id), []);
        var state = new UploadSessionState(repository, time.GetUtcNow());
        File.WriteAllBytes(layout.UploadState(id), JsonSerializer.SerializeToUtf8Bytes(state, StoreJsonContext.Default.UploadSessionState));
        return id;
    }

    public UploadSessionState? Find(string id)
    {
        if (!Guid.TryParseExact(id, "D", out _))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(layout.UploadState(id)), StoreJsonContext.Default.UploadSessionState);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Exclusive use of a session's ingest; null when the session does not exist.</summary>
    public async Task<Lease?> AcquireAsync(string id, CancellationToken cancellationToken)
    {
        if (Find(id) is null)
        {
            // Gone (a collector in another process may have deleted it): forget its hash state too.
            Forget(id);
            return null;
        }

        var slot = _slots.GetOrAdd(id, _ => new Slot());
        await slot.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        FileLock? inUse = null;
        try
        {
            try
            {
                inUse = await FileLock.AcquireAsync(layout.UploadLock(id), exclusive: false, cancellationToken, createDirectory: false).ConfigureAwait(false);
            }
            catch (DirectoryNotFoundException)
            {
                // Deleted meanwhile.
            }

            // Checked holding the lock: a collector deletes only holding it exclusively.
            if (inUse is null || !File.Exists(layout.UploadState(id)))
            {
                inUse?.Dispose();
                slot.Gate.Release();
                return null;
            }

            var data = layout.UploadData(id);
            var suspended = slot.Suspended;
            slot.Suspended = null;
            if (File.Exists(data))
            {
                slot.Ingest = await BlobIngest.ResumeAsync(data, suspended, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                suspended?.Dispose();
                slot.Ingest = BlobIngest.Start(data);
            }
        }
        catch
        {
            inUse?.Dispose();
            slot.Gate.Release();
            throw;
        }

        return new Lease(this, id, slot, inUse);
    }

    /// <summary>Length of a session's data without taking its lease (for status requests).</summary>
    public long Length(string id)
    {
        var info = new FileInfo(layout.UploadData(id));
        return info.Exists ? info.Length : 0;
    }

    /// <summary>
    /// Removes a session that no request is using and that has been idle since <paramref name="idleSince"/>
    /// (for garbage collection, possibly in another process than the one serving it). False when in use,
    /// active again or gone.
    /// </summary>
    public async ValueTask<bool> TryDeleteIdleAsync(string id, DateTimeOffset idleSince)
    {
        FileLock? idle;
        try
        {
            idle = FileLock.TryAcquire(layout.UploadLock(id), exclusive: true, createDirectory: false);
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }

        using (idle)
        {
            if (idle is null || LastActivity(new DirectoryInfo(layout.UploadDirectory(id))) is not { } last || last > idleSince)
            {
                return false;
            }

            await DeleteAsync(id).ConfigureAwait(false);
            return true;
        }
    }

    /// <summary>Removes a session and its data.</summary>
    public async ValueTask DeleteAsync(string id)
    {
        if (_slots.TryRemove(id, out var slot))
        {
            await slot.CloseAsync().ConfigureAwait(false);
        }

        try
        {
            Directory.Delete(layout.UploadDirectory(id), recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // Already gone.
        }
    }

    /// <summary>Every session with its last activity (the later of start and last write).</summary>
    public IEnumerable<(string Id, DateTimeOffset LastActivity)> List()
    {
        var root = new DirectoryInfo(layout.UploadsDirectory);
        if (!root.Exists)
        {
            yield break;
        }

        foreach (var directory in root.EnumerateDirectories())
        {
            if (!Guid.TryParseExact(directory.Name, "D", out _))
            {
                continue;
            }

            if (LastActivity(directory) is { } last)
            {
                yield return (directory.Name, last);
            }
        }
    }

    /// <summary>The repository a session pushes to (null when gone or unreadable).</summary>
    public string? RepositoryOf(string id) => Find(id)?.Repository;

    private static DateTimeOffset? LastActivity(DirectoryInfo directory)
    {
        directory.Refresh();
        if (!directory.Exists)
        {
            return null;
        }

        var last = new DateTimeOffset(directory.LastWriteTimeUtc, TimeSpan.Zero);
        var data = new FileInfo(Path.Combine(directory.FullName, "data"));
        if (data.Exists && data.LastWriteTimeUtc > last.UtcDateTime)
        {
            last = new DateTimeOffset(data.LastWriteTimeUtc, TimeSpan.Zero);
        }

        return last;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var slot in _slots.Values)
        {
            await slot.CloseAsync().ConfigureAwait(false);
        }

        _slots.Clear();
    }

    private void Forget(string id)
    {
        if (_slots.TryRemove(id, out var slot))
        {
            slot.Suspended?.Dispose();
        }
    }

    /// <summary>
    /// Drops the hash state of sessions deleted behind this store's back (by a collector in another process),
    /// once the number of sessions known here doubled since the last look: amortised, it costs a file check
    /// per session created.
    /// </summary>
    private void ForgetDeletedSessions()
    {
        if (_slots.Count < _slotsAfterLastSweep * 2 + 64)
        {
            return;
        }

        foreach (var id in _slots.Keys)
        {
            if (!File.Exists(layout.UploadState(id)))
            {
                Forget(id);
            }
        }

        _slotsAfterLastSweep = _slots.Count;
    }

    internal sealed class Slot
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>Open only while a lease is held.</summary>
        public BlobIngest? Ingest { get; set; }

        /// <summary>Between requests: the hash state the next request goes on from.</summary>
        public SuspendedIngest? Suspended { get; set; }

        public async ValueTask CloseAsync()
        {
            Suspended?.Dispose();
            Suspended = null;
            if (Ingest is { } ingest)
            {
                Ingest = null;
                await ingest.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>One request's hold on a session; disposing it closes the session's file until the next request.</summary>
    public sealed class Lease : IAsyncDisposable
    {
        private readonly UploadSessionStore _owner;
        private readonly Slot _slot;
        private readonly FileLock _inUse;

        internal Lease(UploadSessionStore owner, string id, Slot slot, FileLock inUse)
        {
            _owner = owner;
            Id = id;
            _slot = slot;
            _inUse = inUse;
        }

        public string Id { get; }

        public BlobIngest Ingest => _slot.Ingest ?? throw new ObjectDisposedException(nameof(Lease));

        /// <summary>Hands the ingest over (to commit it); the session's files are removed with <see cref="CompleteAsync"/>.</summary>
        public BlobIngest TakeIngest()
        {
            var ingest = Ingest;
            _slot.Ingest = null;
            return ingest;
        }

        /// <summary>Ends the session after its blob was committed or it failed for good.</summary>
        public async ValueTask CompleteAsync() => await _owner.DeleteAsync(Id).ConfigureAwait(false);

        /// <summary>A failed write leaves the ingest's state unknown; the next request re-opens it from disk.</summary>
        public async ValueTask ResetAsync()
        {
            if (_slot.Ingest is { } ingest)
            {
                _slot.Ingest = null;
                await ingest.DisposeAsync().ConfigureAwait(false);
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (_slot.Ingest is { } ingest)
                {
                    _slot.Ingest = null;
                    _slot.Suspended = await ingest.SuspendAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                _inUse.Dispose();
                _slot.Gate.Release();
            }
        }
    }
}
