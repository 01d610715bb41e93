using System.Security.Cryptography;
using Airlock.IO;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Mvccpb;

namespace Airlock.Content.Metadata;

/// <summary>
/// The metadata of a single-replica S3-backed registry (<c>--storage s3://…</c> without <c>--metadata</c>), in the data
/// directory: an in-process ordered key/value map with etcd's revisions, compares, transactions and leases, so the stores
/// written for etcd run on it unchanged. Keys without a lease are durable (<see cref="MetadataJournal"/>: every write is
/// fsynced before it is answered); leases last as long as the instance that took them, and their keys (upload-session
/// holds, garbage collection's locks and marks) are never written down, as they would be gone with the process anyway.
/// The folder is held by an exclusive lock for the process's lifetime: a second process is refused. Instances opened in
/// one process share one map (as replicas share etcd), each with its own lease.
/// </summary>
internal sealed class LocalMetadata : MetadataStore
{
    /// <summary>Journal bytes after which a write compacts it into a new snapshot (when it is also twice the snapshot).</summary>
    public const long DefaultCompactAfter = 16 << 20;

    private static readonly Dictionary<string, Shared> Opened = new(StringComparer.Ordinal);
    private static readonly Lock OpenedGate = new();

    private readonly Shared _shared;
    private long _lease;
    private int _disposed;

    private LocalMetadata(Shared shared, bool alone)
        : base("/")
    {
        _shared = shared;
        Alone = alone;
    }

    /// <summary>Whether no other instance had the metadata open when this one opened them (no other process can).</summary>
    public bool Alone { get; }

    public override string Location => $"{_shared.Directory} (local: this replica only)";

    /// <summary>What the open found: the bytes of a torn last journal record it dropped (0 when the journal was whole).</summary>
    public long TornBytesDropped => _shared.TornBytes;

    /// <summary>
    /// Opens the metadata in <paramref name="directory"/> (created when missing), recovering from a crash, or joins the
    /// instance this process already has open. Throws <see cref="IOException"/> naming the holder when another process
    /// has it, and <see cref="InvalidDataException"/> when its files are damaged beyond a torn last write.
    /// </summary>
    public static LocalMetadata Open(string directory, ILogger logger, long compactAfter = DefaultCompactAfter)
    {
        var path = Path.GetFullPath(directory);
        lock (OpenedGate)
        {
            if (!Opened.TryGetValue(path, out var shared))
            {
                shared = Shared.Open(path, logger, compactAfter);
                Opened[path] = shared;
            }

            shared.References++;
            return new LocalMetadata(shared, alone: shared.References == 1);
        }
    }

    public override Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(_shared.Execute(map => map.Range(request)));

    public override Task<PutResponse> PutAsync(PutRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(_shared.Execute(map => map.Write(w => w.Put(request))));

    public override Task<DeleteRangeResponse> DeleteRangeAsync(DeleteRangeRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(_shared.Execute(map => map.Write(w => w.DeleteRange(request))));

    public override Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(_shared.Execute(map => map.Txn(request)));

    public override ValueTask<long> LeaseAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Volatile.Read(ref _lease) == 0)
        {
            var granted = _shared.Execute(map => map.Grant());
            if (Interlocked.CompareExchange(ref _lease, granted, 0) != 0)
            {
                _shared.Execute(map => map.Revoke(granted));
            }
        }

        return ValueTask.FromResult(_lease);
    }

    public override Task<bool> LeaseAliveAsync(long lease, CancellationToken cancellationToken) =>
        Task.FromResult(_shared.Execute(map => map.Leases.Contains(lease)));

    /// <summary>Revokes this instance's lease (its keys go at once) and closes the files when it was the last instance.</summary>
    public override ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }

        if (_lease != 0)
        {
            try
            {
                _shared.Execute(map => map.Revoke(_lease));
            }
            catch (StoreUnavailableException)
            {
                // A broken journal: nothing more is written; the lease ends with the process.
            }
        }

        lock (OpenedGate)
        {
            if (--_shared.References == 0)
            {
                Opened.Remove(_shared.Directory);
                _shared.Dispose();
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The map, its files and its lock, shared by the instances of one process.</summary>
    private sealed class Shared : IDisposable
    {
        private static readonly TimeSpan LockRelease = TimeSpan.FromSeconds(2);
        private static readonly TimeSpan LockPoll = TimeSpan.FromMilliseconds(50);

        private readonly Lock _gate = new();
        private readonly KeyValueMap _map;
        private readonly FileLock _lock;

        private Shared(string directory, FileLock held, KeyValueMap map, long tornBytes)
        {
            Directory = directory;
            _lock = held;
            _map = map;
            TornBytes = tornBytes;
        }

        public string Directory { get; }

        public long TornBytes { get; }

        public int References { get; set; }

        public static Shared Open(string directory, ILogger logger, long compactAfter)
        {
            System.IO.Directory.CreateDirectory(directory);
            var lockPath = Path.Combine(directory, "lock");
            var held = FileLock.TryAcquire(lockPath, exclusive: true);

            // A lock this process has just let go of can stay held for a moment by a child process forked meanwhile (it
            // shares the open file description until its exec closes it): one let go of within LockRelease is this
            // process's own, not another's. (A loaded full run reopened a store just closed and was refused once so.)
            for (var waited = TimeSpan.Zero; held is null && waited < LockRelease; waited += LockPoll)
            {
                Thread.Sleep(LockPoll);
                held = FileLock.TryAcquire(lockPath, exclusive: true);
            }

            if (held is null)
            {
                throw new IOException(
                    $"{directory} is in use by another airlock process (it holds {lockPath}): an S3-backed registry without --metadata is a single "
                    + "replica with its metadata in its data directory; stop the other process, or run every replica with --metadata etcd://HOST:2379 to share the store");
            }

            try
            {
                var (journal, recovered) = MetadataJournal.Open(directory);
                if (recovered.TornBytes > 0)
                {
                    logger.LogWarning(
                        "Dropped the torn last record ({Bytes} bytes) of the metadata journal in {Directory}: a write the last process was killed in the middle of, never answered",
                        recovered.TornBytes,
                        directory);
                }

                return new Shared(directory, held, new KeyValueMap(journal, recovered, compactAfter), recovered.TornBytes);
            }
            catch
            {
                held.Dispose();
                throw;
            }
        }

        public T Execute<T>(Func<KeyValueMap, T> operation)
        {
            lock (_gate)
            {
                return operation(_map);
            }
        }

        public void Dispose()
        {
            _map.Dispose();
            _lock.Dispose();
        }
    }

    /// <summary>A key's value and etcd's bookkeeping of it.</summary>
    private sealed class Entry(ByteString key)
    {
        public ByteString Key { get; } = key;

        public ByteString Value { get; set; } = ByteString.Empty;

        public long CreateRevision { get; set; }

        public long ModRevision { get; set; }

        public long Version { get; set; }

        public long Lease { get; set; }

        public KeyValue ToKeyValue(bool keysOnly) => new()
        {
            Key = Key,
            Value = keysOnly ? ByteString.Empty : Value,
            CreateRevision = CreateRevision,
            ModRevision = ModRevision,
            Version = Version,
            Lease = Lease,
        };
    }

    private sealed class KeyOrder : IComparer<Entry>
    {
        public static readonly KeyOrder Instance = new();

        public int Compare(Entry? x, Entry? y) => x!.Key.Span.SequenceCompareTo(y!.Key.Span);
    }

    /// <summary>The ordered map, its revision and leases; called under the shared gate only.</summary>
    private sealed class KeyValueMap : IDisposable
    {
        private readonly SortedSet<Entry> _entries = new(KeyOrder.Instance);
        private readonly MetadataJournal _journal;
        private readonly long _compactAfter;
        private readonly List<DurableChange> _changes = [];
        private long _revision;
        private long _pending;
        private bool _changed;
        private bool _broken;

        public KeyValueMap(MetadataJournal journal, MetadataJournal.Recovered recovered, long compactAfter)
        {
            _journal = journal;
            _compactAfter = compactAfter;
            _revision = recovered.Revision;
            foreach (var durable in recovered.Entries.Values)
            {
                _entries.Add(new Entry(durable.Key)
                {
                    Value = durable.Value,
                    CreateRevision = durable.CreateRevision,
                    ModRevision = durable.ModRevision,
                    Version = durable.Version,
                });
            }
        }

        public HashSet<long> Leases { get; } = [];

        public long Grant()
        {
            CheckUsable();
            long lease;
            Span<byte> random = stackalloc byte[8];
            do
            {
                // Random, as etcd's are: a lease of an earlier process (named in S3 ingest keys) is never taken again.
                RandomNumberGenerator.Fill(random);
                lease = BitConverter.ToInt64(random) & long.MaxValue;
            }
            while (lease == 0 || !Leases.Add(lease));
            return lease;
        }

        public bool Revoke(long lease)
        {
            if (Leases.Remove(lease))
            {
                _entries.RemoveWhere(e => e.Lease == lease);
            }

            return true;
        }

        public RangeResponse Range(RangeRequest request)
        {
            CheckUsable();
            return RangeCore(request);
        }

        public T Write<T>(Func<KeyValueMap, T> write)
            where T : IMessage
        {
            CheckUsable();
            _pending = _revision + 1;
            var response = write(this);
            Commit();
            return response;
        }

        public TxnResponse Txn(TxnRequest request)
        {
            CheckUsable();
            _pending = _revision + 1;
            var succeeded = request.Compare.All(Holds);
            var response = new TxnResponse { Succeeded = succeeded };
            var ops = succeeded ? request.Success : request.Failure;

            // Checked before anything is applied: a transaction happens whole or not at all.
            foreach (var op in ops)
            {
                if (op.RequestCase is not (RequestOp.RequestOneofCase.RequestRange or RequestOp.RequestOneofCase.RequestPut or RequestOp.RequestOneofCase.RequestDeleteRange))
                {
                    throw new NotSupportedException($"the local metadata store does not run {op.RequestCase} in a transaction");
                }

                if (op.RequestCase == RequestOp.RequestOneofCase.RequestPut && op.RequestPut.Lease != 0 && !Leases.Contains(op.RequestPut.Lease))
                {
                    throw new LeaseLostException();
                }
            }

            foreach (var op in ops)
            {
                response.Responses.Add(op.RequestCase switch
                {
                    RequestOp.RequestOneofCase.RequestRange => new ResponseOp { ResponseRange = RangeCore(op.RequestRange) },
                    RequestOp.RequestOneofCase.RequestPut => new ResponseOp { ResponsePut = Put(op.RequestPut) },
                    RequestOp.RequestOneofCase.RequestDeleteRange => new ResponseOp { ResponseDeleteRange = DeleteRange(op.RequestDeleteRange) },
                    _ => throw new NotSupportedException($"the local metadata store does not run {op.RequestCase} in a transaction"),
                });
            }

            Commit();
            response.Header = Header();
            return response;
        }

        public PutResponse Put(PutRequest request)
        {
            if (request.Lease != 0 && !Leases.Contains(request.Lease))
            {
                throw new LeaseLostException();
            }

            var entry = Find(request.Key);
            var wasDurable = entry is { Lease: 0 };
            if (entry is null)
            {
                entry = new Entry(request.Key) { CreateRevision = _pending };
                _entries.Add(entry);
            }

            entry.Value = request.Value;
            entry.ModRevision = _pending;
            entry.Version++;
            entry.Lease = request.Lease;
            _changed = true;
            if (request.Lease == 0)
            {
                _changes.Add(new DurableChange(request.Key, request.Value));
            }
            else if (wasDurable)
            {
                _changes.Add(new DurableChange(request.Key, null));
            }

            return new PutResponse { Header = new ResponseHeader { Revision = _pending } };
        }

        public DeleteRangeResponse DeleteRange(DeleteRangeRequest request)
        {
            var doomed = Select(request.Key, request.RangeEnd).ToList();
            foreach (var entry in doomed)
            {
                _entries.Remove(entry);
                _changed = true;
                if (entry.Lease == 0)
                {
                    _changes.Add(new DurableChange(entry.Key, null));
                }
            }

            return new DeleteRangeResponse { Deleted = doomed.Count, Header = Header() };
        }

        public void Dispose() => _journal.Dispose();

        private void Commit()
        {
            try
            {
                if (_changed)
                {
                    _revision = _pending;
                }

                if (_changes.Count > 0)
                {
                    _journal.Append(_revision, _changes);
                    if (_journal.Length > _compactAfter && _journal.Length > 2 * _journal.SnapshotBytes)
                    {
                        _journal.Compact(_revision, _entries.Where(e => e.Lease == 0).Select(e => new DurableEntry(e.Key, e.Value, e.CreateRevision, e.ModRevision, e.Version)));
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The map holds a write the disk may not: nothing more is answered from it until a restart replays the journal.
                _broken = true;
                throw new StoreUnavailableException($"the metadata journal in {_journal.Directory} could not be written ({ex.Message}); restart airlock once the disk is fixed", ex);
            }
            finally
            {
                _changes.Clear();
                _changed = false;
            }
        }

        private void CheckUsable()
        {
            if (_broken)
            {
                throw new StoreUnavailableException("the local metadata store stopped after a failed journal write; restart airlock once the disk is fixed");
            }
        }

        private ResponseHeader Header() => new() { Revision = _revision };

        private RangeResponse RangeCore(RangeRequest request)
        {
            var selected = Select(request.Key, request.RangeEnd);
            if (request.SortOrder == RangeRequest.Types.SortOrder.Descend)
            {
                selected = request.SortTarget switch
                {
                    RangeRequest.Types.SortTarget.Key => selected.Reverse(),
                    _ => throw new NotSupportedException($"the local metadata store does not sort by {request.SortTarget}"),
                };
            }

            var response = new RangeResponse { Header = Header() };
            foreach (var entry in selected)
            {
                response.Count++;
                if (request.CountOnly)
                {
                    continue;
                }

                if (request.Limit > 0 && response.Kvs.Count == request.Limit)
                {
                    response.More = true;
                    continue;
                }

                response.Kvs.Add(entry.ToKeyValue(request.KeysOnly));
            }

            return response;
        }

        /// <summary>The key alone (no range end), every key from it ("\0"), or the keys in [key, end), in key order.</summary>
        private IEnumerable<Entry> Select(ByteString key, ByteString end)
        {
            if (end.IsEmpty)
            {
                return Find(key) is { } single ? [single] : [];
            }

            var low = new Entry(key);
            var fromAll = end.Length == 1 && end[0] == 0;
            if (_entries.Count == 0 || KeyOrder.Instance.Compare(low, _entries.Max) > 0)
            {
                return [];
            }

            if (fromAll)
            {
                return _entries.GetViewBetween(low, _entries.Max!);
            }

            var high = new Entry(end);
            if (KeyOrder.Instance.Compare(low, high) >= 0)
            {
                return [];
            }

            return _entries.GetViewBetween(low, high).Where(e => !e.Key.Equals(end));
        }

        private Entry? Find(ByteString key) => _entries.TryGetValue(new Entry(key), out var found) ? found : null;

        /// <summary>etcd's compare: a missing key compares as zeros (and never equal by value); a range must hold for every key.</summary>
        private bool Holds(Compare compare)
        {
            var entries = Select(compare.Key, compare.RangeEnd).ToList();
            if (entries.Count == 0)
            {
                return compare.Target != Compare.Types.CompareTarget.Value && Holds(compare, new Entry(compare.Key));
            }

            return entries.All(e => Holds(compare, e));
        }

        private static bool Holds(Compare compare, Entry entry)
        {
            var order = compare.Target switch
            {
                Compare.Types.CompareTarget.Version => entry.Version.CompareTo(compare.Version),
                Compare.Types.CompareTarget.Create => entry.CreateRevision.CompareTo(compare.CreateRevision),
                Compare.Types.CompareTarget.Mod => entry.ModRevision.CompareTo(compare.ModRevision),
                Compare.Types.CompareTarget.Lease => entry.Lease.CompareTo(compare.Lease),
                Compare.Types.CompareTarget.Value => entry.Value.Span.SequenceCompareTo(compare.Value.Span),
                _ => throw new NotSupportedException($"the local metadata store does not compare {compare.Target}"),
            };
            return compare.Result switch
            {
                Compare.Types.CompareResult.Equal => order == 0,
                Compare.Types.CompareResult.Greater => order > 0,
                Compare.Types.CompareResult.Less => order < 0,
                Compare.Types.CompareResult.NotEqual => order != 0,
                _ => false,
            };
        }
    }
}
