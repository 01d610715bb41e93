using System.Runtime.CompilerServices;
using Etcdserverpb;
using Google.Protobuf;
using Mvccpb;

namespace Airlock.Content.Metadata;

/// <summary>
/// The key/value store the S3-backed registry keeps its metadata in (tags, links, referrers, upload sessions, garbage
/// collection's marks and leases), with etcd's model: keys ordered by their bytes, a revision per write, transactions of
/// compares and operations, leases that take their keys with them. Two implementations: etcd itself
/// (<c>--metadata etcd://…</c>, shared by every replica) and <see cref="LocalMetadata"/> in the data directory (one
/// replica). The stores built on it speak etcd's own request types, so they run unchanged on either.
/// </summary>
internal abstract class MetadataStore : IAsyncDisposable
{
    protected MetadataStore(string root) => Root = root.EndsWith('/') ? root : root + "/";

    /// <summary>The prefix of every key of this store, ending in '/'.</summary>
    public string Root { get; }

    /// <summary>Where the metadata live, for logs.</summary>
    public abstract string Location { get; }

    public ByteString Key(string relative) => ByteString.CopyFromUtf8(Root + relative);

    /// <summary>The key without the store's prefix.</summary>
    public string Relative(ByteString key) => key.ToStringUtf8()[Root.Length..];

    /// <summary>The end of the range of every key starting with <paramref name="prefix"/> (etcd's "prefix end").</summary>
    public static ByteString PrefixEnd(ByteString prefix)
    {
        var bytes = prefix.ToByteArray();
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            if (bytes[i] < 0xff)
            {
                bytes[i]++;
                return ByteString.CopyFrom(bytes, 0, i + 1);
            }
        }

        return ByteString.CopyFrom(0);
    }

    /// <summary>One range read (etcd's <c>Range</c>).</summary>
    public abstract Task<RangeResponse> RangeAsync(RangeRequest request, CancellationToken cancellationToken);

    /// <summary>One write (etcd's <c>Put</c>); <see cref="LeaseLostException"/> when its lease is gone.</summary>
    public abstract Task<PutResponse> PutAsync(PutRequest request, CancellationToken cancellationToken);

    /// <summary>One deletion of a key or a range (etcd's <c>DeleteRange</c>).</summary>
    public abstract Task<DeleteRangeResponse> DeleteRangeAsync(DeleteRangeRequest request, CancellationToken cancellationToken);

    /// <summary>One transaction: the compares, then the success or the failure operations, atomically (etcd's <c>Txn</c>).</summary>
    public abstract Task<TxnResponse> TxnAsync(TxnRequest request, CancellationToken cancellationToken);

    /// <summary>This instance's lease, granted on first use; what is attached to it vanishes with the instance.</summary>
    public abstract ValueTask<long> LeaseAsync(CancellationToken cancellationToken);

    /// <summary>Whether <paramref name="lease"/> still exists (its holder is alive).</summary>
    public abstract Task<bool> LeaseAliveAsync(long lease, CancellationToken cancellationToken);

    public abstract ValueTask DisposeAsync();

    public async Task<KeyValue?> GetAsync(string key, CancellationToken cancellationToken)
    {
        var response = await RangeAsync(new RangeRequest { Key = Key(key) }, cancellationToken).ConfigureAwait(false);
        return response.Kvs.Count > 0 ? response.Kvs[0] : null;
    }

    /// <summary>Keys from <paramref name="from"/> (inclusive) to the end of <paramref name="prefix"/>, in key order, at most <paramref name="limit"/> (0: all).</summary>
    public Task<RangeResponse> RangeAsync(string prefix, string from, long limit, bool keysOnly, CancellationToken cancellationToken) =>
        RangeAsync(new RangeRequest { Key = Key(from), RangeEnd = PrefixEnd(Key(prefix)), Limit = limit, KeysOnly = keysOnly }, cancellationToken);

    /// <summary>Every key under <paramref name="prefix"/>, read in pages so a large store never makes one huge response.</summary>
    public async IAsyncEnumerable<KeyValue> ScanAsync(string prefix, bool keysOnly, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        const int Page = 1000;
        var from = prefix;
        while (true)
        {
            var page = await RangeAsync(prefix, from, Page, keysOnly, cancellationToken).ConfigureAwait(false);
            foreach (var kv in page.Kvs)
            {
                yield return kv;
            }

            if (!page.More || page.Kvs.Count == 0)
            {
                yield break;
            }

            from = Relative(page.Kvs[^1].Key) + "\0";
        }
    }

    public async Task<long> PutAsync(string key, ByteString value, long lease, CancellationToken cancellationToken) =>
        (await PutAsync(new PutRequest { Key = Key(key), Value = value, Lease = lease }, cancellationToken).ConfigureAwait(false)).Header.Revision;

    public async Task<long> DeleteAsync(string key, CancellationToken cancellationToken) =>
        (await DeleteRangeAsync(new DeleteRangeRequest { Key = Key(key) }, cancellationToken).ConfigureAwait(false)).Deleted;

    public async Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var key = Key(prefix);
        await DeleteRangeAsync(new DeleteRangeRequest { Key = key, RangeEnd = PrefixEnd(key) }, cancellationToken).ConfigureAwait(false);
    }

    public RequestOp PutOp(string key, ByteString value, long lease = 0) =>
        new() { RequestPut = new PutRequest { Key = Key(key), Value = value, Lease = lease } };

    public RequestOp GetOp(string key) => new() { RequestRange = new RangeRequest { Key = Key(key) } };

    public RequestOp DeleteOp(string key) => new() { RequestDeleteRange = new DeleteRangeRequest { Key = Key(key) } };

    public RequestOp DeletePrefixOp(string prefix) =>
        new() { RequestDeleteRange = new DeleteRangeRequest { Key = Key(prefix), RangeEnd = PrefixEnd(Key(prefix)) } };

    public RequestOp RangeOp(string prefix, string from, long limit, bool keysOnly = false) => new()
    {
        RequestRange = new RangeRequest { Key = Key(from), RangeEnd = PrefixEnd(Key(prefix)), Limit = limit, KeysOnly = keysOnly },
    };

    public Compare Exists(string key) => new()
    {
        Key = Key(key),
        Target = Compare.Types.CompareTarget.Version,
        Result = Compare.Types.CompareResult.Greater,
        Version = 0,
    };

    public Compare Missing(string key) => new()
    {
        Key = Key(key),
        Target = Compare.Types.CompareTarget.Version,
        Result = Compare.Types.CompareResult.Equal,
        Version = 0,
    };

    public Compare Unchanged(string key, long modRevision) => new()
    {
        Key = Key(key),
        Target = Compare.Types.CompareTarget.Mod,
        Result = Compare.Types.CompareResult.Equal,
        ModRevision = modRevision,
    };
}

/// <summary>A key was to be attached to a lease the store no longer has (the replica or the collection it belonged to is gone).</summary>
internal sealed class LeaseLostException(Exception? inner = null) : Exception("the metadata lease is gone", inner);
