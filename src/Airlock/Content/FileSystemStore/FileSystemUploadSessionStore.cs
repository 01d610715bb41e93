using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Airlock.IO;
using Airlock.Oci;

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
/// deleted file held open. After a restart (or an append by another process) the next request re-hashes the file.
/// Requests on one session are serialised by its slot's gate in this process and, across processes, by the
/// session's lock file held exclusively (<see cref="StoreLayout.UploadLock"/>), so a garbage collector in
/// another process deletes a session only when no request is using it. A session's activity is the folder's
/// (and the data's) modification time, stamped from the store's clock when it is created and after each request.
/// </summary>
public sealed class FileSystemUploadSessionStore(StoreLayout layout, TimeProvider time, FileSystemBlobStore blobs) : IUploadSessionStore, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly FileSystemBlobStore _blobs = blobs;
    private int _slotsAfterLastSweep;

    public ValueTask<string> CreateAsync(string repository, CancellationToken cancellationToken)
    {
        ForgetDeletedSessions();
        var id = Guid.NewGuid().ToString("D");
        Directory.CreateDirectory(layout.UploadDirectory(id));
        File.WriteAllBytes(layout.UploadLock(id), []);
        var state = new UploadSessionState(repository, time.GetUtcNow());
        File.WriteAllBytes(layout.UploadState(id), JsonSerializer.SerializeToUtf8Bytes(state, StoreJsonContext.Default.UploadSessionState));
        StampActivity(id);
        return ValueTask.FromResult(id);
    }

    public ValueTask<UploadSessionInfo?> FindAsync(string id, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Guid.TryParseExact(id, "D", out _) ? Describe(new DirectoryInfo(layout.UploadDirectory(id))) : null);

    public async ValueTask<IUploadSession?> OpenAsync(string id, CancellationToken cancellationToken)
    {
        if (!Guid.TryParseExact(id, "D", out _))
        {
            return null;
        }

        if (ReadState(id) is not { } state)
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
                inUse = await FileLock.AcquireAsync(layout.UploadLock(id), exclusive: true, cancellationToken, createDirectory: false).ConfigureAwait(false);
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

            // The suspended hash state is used only when it still matches the file (another process may have
            // appended since this one last held the session); otherwise the file is re-hashed.
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

        return new Session(this, id, state.Repository, slot, inUse);
    }

    public async ValueTask<bool> TryDeleteIdleAsync(string id, DateTimeOffset idleSince, CancellationToken cancellationToken)
    {
        if (!Guid.TryParseExact(id, "D", out _))
        {
            return false;
        }

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

    public async IAsyncEnumerable<UploadSessionInfo> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var root = new DirectoryInfo(layout.UploadsDirectory);
        if (!root.Exists)
        {
            yield break;
        }

        foreach (var directory in root.EnumerateDirectories())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Guid.TryParseExact(directory.Name, "D", out _) && Describe(directory) is { } session)
            {
                yield return session;
            }
        }

        await Task.CompletedTask.ConfigureAwait(false);
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

    /// <summary>Removes a session and its data.</summary>
    private async ValueTask DeleteAsync(string id)
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

    private UploadSessionState? ReadState(string id)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(layout.UploadState(id)), StoreJsonContext.Default.UploadSessionState);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    private UploadSessionInfo? Describe(DirectoryInfo directory)
    {
        if (ReadState(directory.Name) is not { } state || LastActivity(directory) is not { } last)
        {
            return null;
        }

        var data = new FileInfo(Path.Combine(directory.FullName, "data"));
        return new UploadSessionInfo(directory.Name, state.Repository, data.Exists ? data.Length : 0, last, state.StartedAt);
    }

    /// <summary>Sets the session's activity to now on the store's clock (the folder's and the data's times).</summary>
    private void StampActivity(string id)
    {
        var now = time.GetUtcNow().UtcDateTime;
        try
        {
            var data = layout.UploadData(id);
            if (File.Exists(data))
            {
                File.SetLastWriteTimeUtc(data, now);
            }

            Directory.SetLastWriteTimeUtc(layout.UploadDirectory(id), now);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            // Ended meanwhile.
        }
    }

    /// <summary>The later of the folder's and the data's modification times (either is moved by a write).</summary>
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

    private sealed class Slot
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>Open only while a request holds the session.</summary>
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

    /// <summary>One request's hold on a session.</summary>
    private sealed class Session(FileSystemUploadSessionStore owner, string id, string repository, Slot slot, FileLock inUse) : IUploadSession
    {
        private bool _ended;

        public string Id => id;

        public string Repository => repository;

        public long Length => slot.Ingest?.Length ?? 0;

        public async Task<long> AppendAsync(Stream body, CancellationToken cancellationToken)
        {
            var ingest = slot.Ingest ?? throw new ObjectDisposedException(nameof(Session));
            try
            {
                return await ingest.CopyFromAsync(body, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // A failed write leaves the ingest's state unknown; the next request re-opens it from disk.
                slot.Ingest = null;
                await ingest.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        public async Task<Digest> CommitAsync(Digest expected, CancellationToken cancellationToken)
        {
            var ingest = slot.Ingest ?? throw new ObjectDisposedException(nameof(Session));
            slot.Ingest = null;
            try
            {
                // Uploads hash as sha256 while they stream; the store hashes once more for another algorithm.
                return await owner._blobs.CommitAsync(ingest, Digest.Sha256Algorithm, expected, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _ended = true;
                await owner.DeleteAsync(id).ConfigureAwait(false);
            }
        }

        public async ValueTask CancelAsync()
        {
            _ended = true;
            await owner.DeleteAsync(id).ConfigureAwait(false);
        }

        /// <summary>Closes the session's file until the next request (keeping its hash state) and lets that request in.</summary>
        public async ValueTask DisposeAsync()
        {
            try
            {
                if (slot.Ingest is { } ingest)
                {
                    slot.Ingest = null;
                    slot.Suspended = await ingest.SuspendAsync().ConfigureAwait(false);
                }

                if (!_ended)
                {
                    owner.StampActivity(id);
                }
            }
            finally
            {
                inUse.Dispose();
                slot.Gate.Release();
            }
        }
    }
}
