using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Airlock.Content.Metadata;
using Etcdserverpb;
using Google.Protobuf;

namespace Airlock.Content.Etcd;

/// <summary>
/// The store's history in etcd, shared by every replica: each list is numbered keys <c>history/&lt;list&gt;/items/&lt;n&gt;</c>
/// (zero-padded, so a range read gives them oldest first) and a counter <c>history/&lt;list&gt;/next</c>; an append is
/// one transaction on the counter's revision (retried when another replica appended first), and what falls beyond the
/// capacity is deleted by range.
/// </summary>
internal sealed class EtcdStoreHistory(MetadataStore etcd) : IStoreHistory
{
    public ValueTask<IReadOnlyList<StorageSample>> ListSamplesAsync(CancellationToken cancellationToken) =>
        ListAsync("samples", EtcdJsonContext.Default.StorageSample, cancellationToken);

    public async ValueTask<bool> AddSampleAsync(StorageSample sample, TimeSpan spacing, CancellationToken cancellationToken) =>
        await AppendAsync("samples", sample, EtcdJsonContext.Default.StorageSample, IStoreHistory.SampleCapacity, newest => newest is null || newest.At + spacing <= sample.At, cancellationToken).ConfigureAwait(false);

    public ValueTask<IReadOnlyList<CollectionRecord>> ListCollectionsAsync(CancellationToken cancellationToken) =>
        ListAsync("collections", EtcdJsonContext.Default.CollectionRecord, cancellationToken);

    public async ValueTask AddCollectionAsync(CollectionRecord record, CancellationToken cancellationToken) =>
        await AppendAsync("collections", record, EtcdJsonContext.Default.CollectionRecord, IStoreHistory.CollectionCapacity, null, cancellationToken).ConfigureAwait(false);

    public ValueTask<IReadOnlyList<LoadRecord>> ListLoadsAsync(CancellationToken cancellationToken) =>
        ListAsync("loads", EtcdJsonContext.Default.LoadRecord, cancellationToken);

    public async ValueTask AddLoadAsync(LoadRecord record, CancellationToken cancellationToken) =>
        await AppendAsync("loads", record, EtcdJsonContext.Default.LoadRecord, IStoreHistory.LoadCapacity, null, cancellationToken).ConfigureAwait(false);

    private static string Items(string list) => $"history/{list}/items/";

    private static string Item(string list, long number) => Items(list) + number.ToString("D20", CultureInfo.InvariantCulture);

    private async ValueTask<IReadOnlyList<T>> ListAsync<T>(string list, JsonTypeInfo<T> type, CancellationToken cancellationToken)
        where T : class
    {
        var records = new List<T>();
        await foreach (var kv in etcd.ScanAsync(Items(list), keysOnly: false, cancellationToken).ConfigureAwait(false))
        {
            if (Parse(kv.Value, type) is { } record)
            {
                records.Add(record);
            }
        }

        return records;
    }

    private async Task<bool> AppendAsync<T>(string list, T record, JsonTypeInfo<T> type, int capacity, Func<T?, bool>? accept, CancellationToken cancellationToken)
        where T : class
    {
        var counterKey = $"history/{list}/next";
        var value = ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(record, type));
        while (true)
        {
            var read = await etcd.TxnAsync(new TxnRequest
            {
                Success =
                {
                    etcd.GetOp(counterKey),
                    new RequestOp
                    {
                        RequestRange = new RangeRequest
                        {
                            Key = etcd.Key(Items(list)),
                            RangeEnd = MetadataStore.PrefixEnd(etcd.Key(Items(list))),
                            Limit = 1,
                            SortOrder = RangeRequest.Types.SortOrder.Descend,
                            SortTarget = RangeRequest.Types.SortTarget.Key,
                        },
                    },
                },
            }, cancellationToken).ConfigureAwait(false);
            var counter = read.Responses[0].ResponseRange.Kvs.FirstOrDefault();
            var newest = read.Responses[1].ResponseRange.Kvs.FirstOrDefault();
            if (accept is not null && !accept(newest is null ? null : Parse(newest.Value, type)))
            {
                return false;
            }

            var next = counter is not null && long.TryParse(counter.Value.ToStringUtf8(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
            var appended = await etcd.TxnAsync(new TxnRequest
            {
                Compare = { counter is null ? etcd.Missing(counterKey) : etcd.Unchanged(counterKey, counter.ModRevision) },
                Success =
                {
                    etcd.PutOp(Item(list, next), value),
                    etcd.PutOp(counterKey, ByteString.CopyFromUtf8((next + 1).ToString(CultureInfo.InvariantCulture))),
                    new RequestOp
                    {
                        // Everything older than the newest `capacity` records.
                        RequestDeleteRange = new DeleteRangeRequest { Key = etcd.Key(Items(list)), RangeEnd = etcd.Key(Item(list, Math.Max(0, next + 1 - capacity))) },
                    },
                },
            }, cancellationToken).ConfigureAwait(false);
            if (appended.Succeeded)
            {
                return true;
            }
        }
    }

    private static T? Parse<T>(ByteString value, JsonTypeInfo<T> type)
        where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(value.Span, type);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
