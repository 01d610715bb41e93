using System.Globalization;
using Airlock.Content.Metadata;
using Airlock.Oci;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;

namespace Airlock.Content.Etcd;

/// <summary>
/// The <see cref="IGarbageCollectionGuard"/> of a store shared by replicas, in etcd. The reference / sweep lease is
/// etcd's readers-writer recipe: each holder puts a key under <c>gc/rw/</c> attached to its replica's lease, a
/// reference ("r") waits for the sweeps ("w") whose keys were created before its own, a sweep waits for every earlier
/// key. One collection at a time holds <c>gc/collector</c> (created only if absent, on the collector's lease, so a
/// collector that dies releases it when its lease expires). While a run lasts, <c>gc/run</c> names it and the lease
/// its notes are attached to; every reference made during it, on any replica, puts <c>gc/marks/&lt;run&gt;/&lt;digest&gt;</c>,
/// which the sweep reads under its lease before each deletion.
/// </summary>
internal sealed class EtcdGarbageCollectionGuard(MetadataStore etcd) : IGarbageCollectionGuard
{
    private MetadataStore Etcd => etcd;

    private const string Holders = "gc/rw/";
    private const string CollectorKey = "gc/collector";
    private const string RunKey = "gc/run";
    private static readonly ByteString Reader = ByteString.CopyFromUtf8("r");
    private static readonly ByteString Writer = ByteString.CopyFromUtf8("w");
    private readonly string _instance = Guid.NewGuid().ToString("N");
    private long _holders;

    public async ValueTask<IReferenceLease> EnterReferenceAsync(CancellationToken cancellationToken)
    {
        var (key, revision, holders, run) = await EnterAsync(Reader, cancellationToken).ConfigureAwait(false);
        try
        {
            if (holders.Any(h => h.CreateRevision < revision && h.Value.Equals(Writer)))
            {
                await WaitForEarlierAsync(revision, writersOnly: true, cancellationToken).ConfigureAwait(false);
                run = await etcd.GetAsync(RunKey, cancellationToken).ConfigureAwait(false);
            }

            return new ReferenceLease(this, key, run is null ? null : ParseRun(run.Value));
        }
        catch
        {
            await ReleaseAsync(key).ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask<ICollectionRun?> TryBeginCollectionAsync(CancellationToken cancellationToken)
    {
        var lease = await etcd.LeaseAsync(cancellationToken).ConfigureAwait(false);
        var claimed = await etcd.TxnAsync(new TxnRequest
        {
            Compare = { etcd.Missing(CollectorKey) },
            Success = { etcd.PutOp(CollectorKey, ByteString.CopyFromUtf8(_instance), lease) },
        }, cancellationToken).ConfigureAwait(false);
        if (!claimed.Succeeded)
        {
            return null;
        }

        var run = new RunInfo(claimed.Header.Revision, lease);
        try
        {
            // Begun excluding references, so none is half made when the mark starts.
            await using (await EnterSweepAsync(cancellationToken).ConfigureAwait(false))
            {
                await etcd.PutAsync(RunKey, ByteString.CopyFromUtf8(run.ToString()), lease, cancellationToken).ConfigureAwait(false);
            }

            return new CollectionRun(this, run);
        }
        catch
        {
            await EndRunAsync(run).ConfigureAwait(false);
            throw;
        }
    }

    private async Task<SweepLease> EnterSweepAsync(CancellationToken cancellationToken)
    {
        var (key, revision, holders, _) = await EnterAsync(Writer, cancellationToken).ConfigureAwait(false);
        try
        {
            if (holders.Any(h => h.CreateRevision < revision))
            {
                await WaitForEarlierAsync(revision, writersOnly: false, cancellationToken).ConfigureAwait(false);
            }

            return new SweepLease(this, key);
        }
        catch
        {
            await ReleaseAsync(key).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Puts this holder's key and, in the same transaction, reads the other holders and the run.</summary>
    private async Task<(string Key, long Revision, IReadOnlyList<KeyValue> Holders, KeyValue? Run)> EnterAsync(ByteString kind, CancellationToken cancellationToken)
    {
        var lease = await etcd.LeaseAsync(cancellationToken).ConfigureAwait(false);
        var key = Holders + _instance + "-" + Interlocked.Increment(ref _holders).ToString(CultureInfo.InvariantCulture);
        var response = await etcd.TxnAsync(new TxnRequest
        {
            Success = { etcd.PutOp(key, kind, lease), etcd.RangeOp(Holders, Holders, 0), etcd.GetOp(RunKey) },
        }, cancellationToken).ConfigureAwait(false);
        var run = response.Responses[2].ResponseRange.Kvs;
        return (key, response.Header.Revision, response.Responses[1].ResponseRange.Kvs, run.Count > 0 ? run[0] : null);
    }

    /// <summary>Polls until no holder created before <paramref name="revision"/> (only sweeps, for a reference) is left.</summary>
    private async Task WaitForEarlierAsync(long revision, bool writersOnly, CancellationToken cancellationToken)
    {
        var wait = 1;
        while (true)
        {
            await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            wait = Math.Min(wait * 2, 25);
            var holders = await etcd.RangeAsync(Holders, Holders, 0, keysOnly: false, cancellationToken).ConfigureAwait(false);
            if (!holders.Kvs.Any(h => h.CreateRevision < revision && (!writersOnly || h.Value.Equals(Writer))))
            {
                return;
            }
        }
    }

    private async ValueTask ReleaseAsync(string key)
    {
        try
        {
            await etcd.DeleteAsync(key, CancellationToken.None).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            // The key is attached to the replica's lease: it goes when the lease does.
        }
    }

    private async ValueTask EndRunAsync(RunInfo run)
    {
        try
        {
            await etcd.TxnAsync(new TxnRequest
            {
                Success = { etcd.DeleteOp(RunKey), etcd.DeletePrefixOp(Marks(run)), etcd.DeleteOp(CollectorKey) },
            }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            // All three are attached to the collector's lease.
        }
    }

    private static string Marks(RunInfo run) => "gc/marks/" + run.Revision.ToString(CultureInfo.InvariantCulture) + "/";

    private static RunInfo? ParseRun(ByteString value)
    {
        var parts = value.ToStringUtf8().Split(' ');
        return parts.Length == 2
            && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var revision)
            && long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var lease)
            ? new RunInfo(revision, lease)
            : null;
    }

    /// <summary>A collection: the revision its collector key was created at, and the lease its notes live on.</summary>
    private sealed record RunInfo(long Revision, long Lease)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Revision} {Lease}");
    }

    private sealed class ReferenceLease(EtcdGarbageCollectionGuard owner, string key, RunInfo? run) : IReferenceLease
    {
        private int _disposed;

        public async ValueTask NoteReferencedAsync(Digest digest, CancellationToken cancellationToken)
        {
            if (run is null)
            {
                return;
            }

            try
            {
                await owner.Etcd.PutAsync(Marks(run) + digest, ByteString.Empty, run.Lease, cancellationToken).ConfigureAwait(false);
            }
            catch (LeaseLostException)
            {
                // The collection's lease is gone: it ended (its collector died) and marks nothing any more.
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                await owner.ReleaseAsync(key).ConfigureAwait(false);
            }
        }
    }

    private sealed class SweepLease(EtcdGarbageCollectionGuard owner, string key, RunInfo? run = null) : ISweepLease
    {
        private int _disposed;

        public async ValueTask<bool> ReferencedSinceBeginAsync(Digest digest, CancellationToken cancellationToken) =>
            await owner.Etcd.GetAsync(Marks(run ?? throw new InvalidOperationException("no collection is running")) + digest, cancellationToken).ConfigureAwait(false) is not null;

        public SweepLease For(RunInfo collection) => new(owner, key, collection);

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                await owner.ReleaseAsync(key).ConfigureAwait(false);
            }
        }
    }

    private sealed class CollectionRun(EtcdGarbageCollectionGuard owner, RunInfo run) : ICollectionRun
    {
        private int _disposed;

        public async ValueTask<ISweepLease> EnterSweepAsync(CancellationToken cancellationToken) =>
            (await owner.EnterSweepAsync(cancellationToken).ConfigureAwait(false)).For(run);

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                await owner.EndRunAsync(run).ConfigureAwait(false);
            }
        }
    }
}
