using System.Diagnostics;
using Airlock.Content.Metadata;
using Etcdserverpb;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>
/// The data directory's metadata store of a single S3-backed replica: etcd's semantics (the stores written for etcd run
/// on it unchanged), durability across a restart, recovery from a write cut short by a kill, and the folder refused to a
/// second process.
/// </summary>
public sealed class LocalMetadataTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-local-metadata-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static CancellationToken None => CancellationToken.None;

    private static ByteString Text(string value) => ByteString.CopyFromUtf8(value);

    private LocalMetadata Open(long compactAfter = LocalMetadata.DefaultCompactAfter) => LocalMetadata.Open(_directory, NullLogger.Instance, compactAfter);

    private string Journal => Path.Combine(_directory, "journal");

    [Fact]
    public async Task Transactions_compare_and_count_revisions_as_etcd_does()
    {
        await using var store = Open();
        var created = await store.TxnAsync(new TxnRequest { Compare = { store.Missing("a") }, Success = { store.PutOp("a", Text("1")) } }, None);
        Assert.True(created.Succeeded);
        var again = await store.TxnAsync(new TxnRequest { Compare = { store.Missing("a") }, Success = { store.PutOp("a", Text("2")) }, Failure = { store.GetOp("a") } }, None);
        Assert.False(again.Succeeded);
        Assert.Equal("1", again.Responses[0].ResponseRange.Kvs[0].Value.ToStringUtf8());

        // A read-only transaction does not move the revision; each write moves it by one, for all its keys.
        Assert.Equal(created.Header.Revision, again.Header.Revision);
        var both = await store.TxnAsync(new TxnRequest { Success = { store.PutOp("b", Text("x")), store.PutOp("c", Text("y")) } }, None);
        Assert.Equal(created.Header.Revision + 1, both.Header.Revision);
        var b = (await store.GetAsync("b", None))!;
        Assert.Equal(both.Header.Revision, b.ModRevision);
        Assert.Equal(both.Header.Revision, b.CreateRevision);
        Assert.Equal(1, b.Version);

        var stale = await store.TxnAsync(new TxnRequest { Compare = { store.Unchanged("a", created.Header.Revision - 1) }, Success = { store.DeleteOp("a") } }, None);
        Assert.False(stale.Succeeded);
        var current = await store.TxnAsync(new TxnRequest { Compare = { store.Unchanged("a", created.Header.Revision) }, Success = { store.DeleteOp("a") } }, None);
        Assert.True(current.Succeeded);
        Assert.Equal(1, current.Responses[0].ResponseDeleteRange.Deleted);
        Assert.Null(await store.GetAsync("a", None));
    }

    [Fact]
    public async Task Ranges_are_in_byte_order_with_limits_counts_and_a_descending_read()
    {
        await using var store = Open();
        foreach (var name in new[] { "tags/b", "tags/a", "tags/c", "tagsx", "other" })
        {
            await store.PutAsync(name, Text(name), 0, None);
        }

        var page = await store.RangeAsync("tags/", "tags/", 2, keysOnly: true, None);
        Assert.Equal(["tags/a", "tags/b"], page.Kvs.Select(kv => store.Relative(kv.Key)));
        Assert.True(page.More);
        Assert.Equal(3, page.Count);
        Assert.True(page.Kvs.All(kv => kv.Value.IsEmpty));
        Assert.Equal(["tags/a", "tags/b", "tags/c"], await store.ScanAsync("tags/", keysOnly: false, None).Select(kv => kv.Value.ToStringUtf8()).ToListAsync());

        var newest = await store.RangeAsync(new RangeRequest
        {
            Key = store.Key("tags/"),
            RangeEnd = MetadataStore.PrefixEnd(store.Key("tags/")),
            Limit = 1,
            SortOrder = RangeRequest.Types.SortOrder.Descend,
            SortTarget = RangeRequest.Types.SortTarget.Key,
        }, None);
        Assert.Equal("tags/c", store.Relative(newest.Kvs.Single().Key));

        // A compare over a range holds only if it holds for every key in it (none: compared as a missing key).
        var empty = new Compare { Key = store.Key("tags/"), RangeEnd = MetadataStore.PrefixEnd(store.Key("tags/")), Target = Compare.Types.CompareTarget.Version, Result = Compare.Types.CompareResult.Equal, Version = 0 };
        Assert.False((await store.TxnAsync(new TxnRequest { Compare = { empty } }, None)).Succeeded);
        await store.DeletePrefixAsync("tags/", None);
        Assert.True((await store.TxnAsync(new TxnRequest { Compare = { empty } }, None)).Succeeded);
        Assert.NotNull(await store.GetAsync("tagsx", None));
    }

    [Fact]
    public async Task Keys_without_a_lease_survive_a_restart_and_leased_keys_end_with_their_instance()
    {
        long lease;
        await using (var store = Open())
        {
            lease = await store.LeaseAsync(None);
            await store.PutAsync("durable", Text("kept"), 0, None);
            await store.PutAsync("held", Text("by the lease"), lease, None);
            await store.PutAsync("overwritten", Text("first durable"), 0, None);
            await store.PutAsync("overwritten", Text("then leased"), lease, None);
            await store.PutAsync("deleted", Text("gone"), 0, None);
            await store.DeleteAsync("deleted", None);

            // A second instance in the process shares the map, with a lease of its own.
            await using var other = Open();
            Assert.Equal("by the lease", (await other.GetAsync("held", None))!.Value.ToStringUtf8());
            Assert.True(await other.LeaseAliveAsync(lease, None));
            Assert.NotEqual(lease, await other.LeaseAsync(None));
        }

        await using var reopened = Open();
        Assert.Equal(0, reopened.TornBytesDropped);
        Assert.Equal("kept", (await reopened.GetAsync("durable", None))!.Value.ToStringUtf8());
        Assert.Null(await reopened.GetAsync("held", None));
        Assert.Null(await reopened.GetAsync("overwritten", None));
        Assert.Null(await reopened.GetAsync("deleted", None));
        Assert.False(await reopened.LeaseAliveAsync(lease, None));
        await Assert.ThrowsAsync<LeaseLostException>(() => reopened.PutAsync("late", Text("on a dead lease"), lease, None));
        var refused = await Assert.ThrowsAsync<LeaseLostException>(() => reopened.TxnAsync(new TxnRequest { Success = { reopened.PutOp("first", Text("x")), reopened.PutOp("second", Text("y"), lease) } }, None));
        Assert.Null(await reopened.GetAsync("first", None));
        Assert.NotNull(refused);
    }

    [Fact]
    public async Task A_torn_last_record_is_dropped_and_every_write_answered_before_it_is_kept()
    {
        await using (var store = Open())
        {
            await store.PutAsync("one", Text("1"), 0, None);
            await store.PutAsync("two", Text("2"), 0, None);
        }

        var whole = new FileInfo(Journal).Length;
        await using (var store = Open())
        {
            await store.PutAsync("three", Text("the write a kill cut short"), 0, None);
        }

        // As a kill -9 in the middle of the last append leaves it: the record's start on disk, not its end.
        var torn = new FileInfo(Journal).Length - 5;
        using (var file = new FileStream(Journal, FileMode.Open))
        {
            file.SetLength(torn);
        }

        await using (var recovered = Open())
        {
            Assert.Equal(torn - whole, recovered.TornBytesDropped);
            Assert.Equal("1", (await recovered.GetAsync("one", None))!.Value.ToStringUtf8());
            Assert.Equal("2", (await recovered.GetAsync("two", None))!.Value.ToStringUtf8());
            Assert.Null(await recovered.GetAsync("three", None));
            Assert.Equal(whole, new FileInfo(Journal).Length);
            await recovered.PutAsync("four", Text("4"), 0, None);
        }

        await using var next = Open();
        Assert.Equal(0, next.TornBytesDropped);
        Assert.Equal(["one", "two", "four"], await next.ScanAsync("", keysOnly: true, None).Select(kv => next.Relative(kv.Key)).OrderBy(k => k.Length).ToListAsync());
    }

    [Fact]
    public async Task A_damaged_record_followed_by_others_is_refused_rather_than_served_as_a_partial_history()
    {
        await using (var store = Open())
        {
            await store.PutAsync("one", Text("1"), 0, None);
            await store.PutAsync("two", Text("2"), 0, None);
        }

        var content = await File.ReadAllBytesAsync(Journal);
        var header = "airlock-metadata-journal 1\n".Length;
        content[header + 12] ^= 0xff;
        await File.WriteAllBytesAsync(Journal, content);

        var error = Assert.Throws<InvalidDataException>(() => Open());
        Assert.Contains(Journal, error.Message, StringComparison.Ordinal);
        Assert.Contains("restore", error.Message, StringComparison.Ordinal);
        Assert.Equal(content, await File.ReadAllBytesAsync(Journal));
    }

    [Fact]
    public async Task The_journal_is_compacted_into_a_snapshot_and_both_replay_after_a_restart()
    {
        await using (var store = Open(compactAfter: 4096))
        {
            for (var i = 0; i < 200; i++)
            {
                await store.PutAsync($"key/{i % 20:D2}", Text($"value {i}"), 0, None);
            }

            await store.DeleteAsync("key/00", None);
        }

        Assert.True(File.Exists(Path.Combine(_directory, "snapshot")));
        Assert.True(new FileInfo(Journal).Length < 4096 * 2);
        await using var reopened = Open();
        var values = await reopened.ScanAsync("key/", keysOnly: false, None).Select(kv => kv.Value.ToStringUtf8()).ToListAsync();
        Assert.Equal(Enumerable.Range(181, 19).Select(i => $"value {i}"), values);
    }

    [Fact]
    public async Task A_second_process_on_the_folder_is_refused_naming_the_lock_and_the_way_to_run_replicas()
    {
        await using (Open())
        {
        }

        // A real second process (util-linux flock) holds the folder's lock, as a running registry does.
        var start = new ProcessStartInfo("flock") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in new[] { "--exclusive", "--close", Path.Combine(_directory, "lock"), "-c", "echo held; exec sleep 120" })
        {
            start.ArgumentList.Add(argument);
        }

        using var holder = Process.Start(start)!;
        try
        {
            Assert.Equal("held", await holder.StandardOutput.ReadLineAsync());
            var error = Assert.Throws<IOException>(() => Open());
            Assert.Contains("in use by another airlock process", error.Message, StringComparison.Ordinal);
            Assert.Contains(Path.Combine(_directory, "lock"), error.Message, StringComparison.Ordinal);
            Assert.Contains("--metadata etcd://", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
            await holder.WaitForExitAsync();
        }

        await using var after = Open();
        Assert.NotNull(after);
    }
}
