using System.Text;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>
/// The filesystem store's ordered index (<see cref="RepositoryIndex"/>): derived from the tree, repaired from it when
/// missing, damaged or behind, and never trusted over it. Each test compares the index's keys with a fresh read of the
/// tree, and the listings with what the repositories hold.
/// </summary>
public sealed class RepositoryIndexTests : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly Digest Manifest = Digest.Sha256(Encoding.UTF8.GetBytes("manifest"));

    private readonly string _data = Directory.CreateTempSubdirectory("airlock-index-").FullName;
    private readonly List<FileSystemRegistryStore> _opened = [];

    private StoreLayout Layout => new(_data);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }

        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task A_missing_index_is_rebuilt_from_the_tree_when_the_store_opens()
    {
        await using (var store = Open(owned: false))
        {
            await FillAsync(store);
        }

        Directory.Delete(Layout.IndexDirectory, recursive: true);
        var reopened = Open();
        await AssertIndexEqualsTreeAsync(reopened);
        Assert.Equal(["app", "team/app", "team/app/nested"], (await reopened.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        Assert.True(File.Exists(Layout.IndexSnapshot));
        Assert.True(File.Exists(Layout.IndexJournal));
    }

    [Theory]
    [InlineData("snapshot: a flipped byte")]
    [InlineData("snapshot: cut short")]
    [InlineData("snapshot: another format")]
    [InlineData("journal: a record that does not check out")]
    [InlineData("journal: another format")]
    [InlineData("journal: of another snapshot")]
    public async Task A_damaged_index_file_is_rebuilt_from_the_tree_when_the_store_opens(string damage)
    {
        await using (var store = Open(owned: false))
        {
            await FillAsync(store);
            await store.Index.CompactAsync(None);
            await store.Repositories.SetTagAsync("app", "after-compaction", Manifest, None);
        }

        Damage(damage);
        var reopened = Open();
        await AssertIndexEqualsTreeAsync(reopened);
        Assert.Equal(["after-compaction", "v1", "v2"], (await reopened.Repositories.ListTagsAsync("app", null, 10, None))!.Names);
    }

    [Fact]
    public async Task A_journal_damaged_while_the_store_serves_is_noticed_and_the_index_rebuilt()
    {
        var store = Open();
        var other = Open();
        await FillAsync(store);
        Assert.Equal(3, (await other.Repositories.ListRepositoriesAsync(null, 10, None)).Names.Count);

        // Another process's record torn in the middle and followed by more (a disk that lost a block).
        await File.AppendAllTextAsync(Layout.IndexJournal, "+rtorn/rec\n+rapp/late 00000000\n");
        await store.Repositories.SetTagAsync("late", "v1", Manifest, None);
        Assert.Equal(["app", "late", "team/app", "team/app/nested"], (await other.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        Assert.Equal(["app", "late", "team/app", "team/app/nested"], (await store.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        await AssertIndexEqualsTreeAsync(store);
        await AssertIndexEqualsTreeAsync(other);
    }

    [Fact]
    public async Task A_name_recorded_before_its_write_reached_the_tree_is_never_listed()
    {
        var store = Open();
        var other = Open();
        await FillAsync(store);
        var (reached, release) = HoldNextWrite(store);

        var write = store.Repositories.SetTagAsync("new/app", "v1", Manifest, None).AsTask();
        Assert.Equal("created rnew/app tnew/app:v1", await reached.Task.WaitAsync(TimeSpan.FromSeconds(30)));

        // The index has both names; the tree has neither: nobody is told about them, nor may read them.
        Assert.Contains("rnew/app", await other.Index.ReadKeysAsync(None));
        Assert.False(await other.Repositories.ExistsAsync("new/app", None));
        Assert.Null(await other.Repositories.ListTagsAsync("new/app", null, 10, None));
        Assert.Equal(["app", "team/app", "team/app/nested"], (await other.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        var page = await other.Repositories.ListRepositoriesAsync("app", 1, None);
        Assert.Equal(["team/app"], page.Names);
        Assert.True(page.HasMore);

        release.SetResult();
        await write;
        Assert.Equal(["app", "new/app", "team/app", "team/app/nested"], (await other.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        Assert.Equal(["v1"], (await other.Repositories.ListTagsAsync("new/app", null, 10, None))!.Names);
    }

    [Fact]
    public async Task A_deletion_is_gone_from_the_listings_before_it_is_recorded()
    {
        var store = Open();
        var other = Open();
        await FillAsync(store);
        var (reached, release) = HoldNextWrite(store);

        var delete = store.Repositories.DeleteTagAsync("app", "v1", None).AsTask();
        Assert.Equal("deleted tapp:v1", await reached.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("tapp:v1", await other.Index.ReadKeysAsync(None));
        Assert.Equal(["v2"], (await other.Repositories.ListTagsAsync("app", null, 10, None))!.Names);

        release.SetResult();
        Assert.True(await delete);
        await AssertIndexEqualsTreeAsync(other);
    }

    [Fact]
    public async Task A_tree_changed_behind_the_index_is_reconciled_by_a_collection()
    {
        var store = Open();
        await FillAsync(store);

        // Restored from a backup by hand while the registry serves, and a repository removed by hand.
        var restored = Path.Combine(Layout.RepositoriesDirectory, "restored", "app");
        Directory.CreateDirectory(Path.Combine(restored, "_manifests", "tags"));
        await File.WriteAllTextAsync(Path.Combine(restored, "_manifests", "tags", "v9"), Manifest.ToString());
        Directory.Delete(Path.Combine(Layout.RepositoriesDirectory, "team", "app", "nested"), recursive: true);

        // The removal shows at once (pages check the tree); the restored repository once the index is reconciled.
        Assert.Equal(["app", "team/app"], (await store.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        var collector = FileSystemRegistryStore.OpenForCollection(_data, TimeProvider.System, NullLogger.Instance);
        _opened.Add(collector);
        var result = await new GarbageCollector(collector, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: true, None);
        Assert.Empty(result.DeletedBlobs);
        Assert.Equal(["app", "restored/app", "team/app"], (await store.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        Assert.Equal(["v9"], (await store.Repositories.ListTagsAsync("restored/app", null, 10, None))!.Names);
        await AssertIndexEqualsTreeAsync(store);
        Assert.Equal(0, (await store.Repositories.ReconcileListingsAsync(None)).Changed);
    }

    [Fact]
    public async Task The_journal_is_folded_into_a_new_snapshot_that_every_instance_follows()
    {
        var store = Open();
        var other = Open();
        store.Index.CompactionMinimum = 16;
        await FillAsync(store);
        var generation = ReadGeneration(Layout.IndexSnapshot);
        for (var i = 0; i < 40; i++)
        {
            await store.Repositories.SetTagAsync("app", $"build-{i:D2}", Manifest, None);
        }

        // The compaction runs in the background once the journal is long; closing the store waits for it.
        await store.DisposeAsync();
        _opened.Remove(store);
        Assert.True(ReadGeneration(Layout.IndexSnapshot) > generation);
        Assert.True(File.ReadAllLines(Layout.IndexJournal).Length < 40, "the journal was folded into the snapshot");

        var tags = (await other.Repositories.ListTagsAsync("app", null, 100, None))!.Names;
        Assert.Equal(42, tags.Count);
        await other.Repositories.DeleteTagAsync("app", "build-00", None);
        var third = Open();
        Assert.Equal(41, (await third.Repositories.ListTagsAsync("app", null, 100, None))!.Names.Count);
        await AssertIndexEqualsTreeAsync(other);
        await AssertIndexEqualsTreeAsync(third);
    }

    [Fact]
    public async Task A_store_left_open_by_a_dead_process_is_rebuilt_by_the_next_one_to_open_it_alone()
    {
        await using (var store = Open(owned: false))
        {
            await FillAsync(store);
        }

        // What a process killed between its record and its write leaves: a name the tree lacks, and its session
        // file, no longer locked by anyone (the child-process test kills a real one at that point).
        using (var journal = IndexJournal.Open(Layout.IndexJournal)!)
        {
            journal.Append(IndexJournal.Encode([(true, "tapp:never-written")]));
        }

        await File.WriteAllBytesAsync(Path.Combine(Layout.IndexSessionsDirectory, "dead"), []);

        var reopened = Open();
        Assert.Equal(["v1", "v2"], (await reopened.Repositories.ListTagsAsync("app", null, 10, None))!.Names);
        await AssertIndexEqualsTreeAsync(reopened);
        Assert.False(File.Exists(Path.Combine(Layout.IndexSessionsDirectory, "dead")));
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("snapshot: a flipped byte")]
    [InlineData("journal: a record that does not check out")]
    [InlineData("written before the index kept marks")]
    public async Task Authenticated_only_marks_come_from_the_index_and_are_rebuilt_with_it_from_the_tree(string damage)
    {
        await using (var store = Open(owned: false))
        {
            await FillAsync(store);
            await store.Repositories.MarkAuthenticatedOnlyAsync("cache/private", None);
            await store.Index.CompactAsync(None);
            await store.Repositories.MarkAuthenticatedOnlyAsync("team/app", None);
            Assert.Equal(["cache/private", "team/app"], await store.Repositories.ListAuthenticatedOnlyAsync(None));
        }

        switch (damage)
        {
            case "missing":
                Directory.Delete(Layout.IndexDirectory, recursive: true);
                break;
            case "written before the index kept marks":
                // The previous format: the same keys without the marks, which a reader of that format took for the whole index.
                var keys = RepositoryIndex.ReadTree(Layout).Where(k => k[0] != IndexKeys.MarkKind).ToList();
                IndexSnapshot.Write(Layout.IndexSnapshot, 7, keys);
                File.WriteAllText(Layout.IndexSnapshot, File.ReadAllText(Layout.IndexSnapshot).Replace("airlock-index 2 ", "airlock-index 1 ", StringComparison.Ordinal));
                File.WriteAllText(Layout.IndexJournal, "airlock-index-journal 1 7\n");
                break;
            default:
                Damage(damage);
                break;
        }

        var reopened = Open();
        Assert.Equal(["cache/private", "team/app"], await reopened.Repositories.ListAuthenticatedOnlyAsync(None));
        await AssertIndexEqualsTreeAsync(reopened);
    }

    [Fact]
    public async Task A_mark_recorded_before_it_reached_the_tree_already_counts()
    {
        var store = Open();
        await FillAsync(store);
        var (reached, release) = HoldNextWrite(store);

        // The pull-through cache marks a repository before any of its content is written; held between the index
        // record and the tree's mark file.
        var mark = store.Repositories.MarkAuthenticatedOnlyAsync("cache/private", None).AsTask();
        Assert.Equal("created rcache/private acache/private", await reached.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(File.Exists(Layout.AuthenticatedOnly("cache/private")));

        // Another process starting now reads the marks from the index: the repository counts as marked (fail closed),
        // though no listing shows it (the tree does not hold it).
        var other = Open();
        Assert.Equal(["cache/private"], await other.Repositories.ListAuthenticatedOnlyAsync(None));
        Assert.DoesNotContain("cache/private", (await other.Repositories.ListRepositoriesAsync(null, 10, None)).Names);

        release.SetResult();
        await mark;
        Assert.True(File.Exists(Layout.AuthenticatedOnly("cache/private")));
        await AssertIndexEqualsTreeAsync(other);
    }

    [Fact]
    public async Task Marks_outlive_a_process_that_died_with_the_store_open()
    {
        await using (var store = Open(owned: false))
        {
            await FillAsync(store);
            await store.Repositories.MarkAuthenticatedOnlyAsync("cache/kept", None);
            await store.Repositories.SetTagAsync("cache/kept", "v1", Manifest, None);
        }

        // What a process killed between recording a mark and writing it leaves (the child-process test kills a real
        // one): a mark the tree lacks, with no content behind it, and its session file locked by nobody.
        using (var journal = IndexJournal.Open(Layout.IndexJournal)!)
        {
            journal.Append(IndexJournal.Encode([(true, "rcache/cut"), (true, "acache/cut")]));
        }

        await File.WriteAllBytesAsync(Path.Combine(Layout.IndexSessionsDirectory, "dead"), []);

        var reopened = Open();
        Assert.Equal(["cache/kept"], await reopened.Repositories.ListAuthenticatedOnlyAsync(None));
        await AssertIndexEqualsTreeAsync(reopened);
    }

    [Fact]
    public async Task A_collection_reconciles_marks_and_marks_the_repositories_the_tree_holds()
    {
        var store = Open();
        await FillAsync(store);
        await store.Repositories.MarkAuthenticatedOnlyAsync("app", None);

        // Behind the index: a repository restored by hand with its mark, and a mark removed by hand.
        var restored = Path.Combine(Layout.RepositoriesDirectory, "restored", "app");
        Directory.CreateDirectory(Path.Combine(restored, "_manifests", "tags"));
        await File.WriteAllTextAsync(Path.Combine(restored, "_manifests", "tags", "v9"), Manifest.ToString());
        await File.WriteAllBytesAsync(Path.Combine(restored, StoreLayout.AuthenticatedOnlyMarker), []);
        File.Delete(Layout.AuthenticatedOnly("app"));

        var reconciled = await store.Repositories.ReconcileListingsAsync(None);
        Assert.Equal(["app", "restored/app", "team/app", "team/app/nested"], reconciled.Repositories);
        Assert.Equal(4, reconciled.Changed);
        Assert.Equal(["restored/app"], await store.Repositories.ListAuthenticatedOnlyAsync(None));
        await AssertIndexEqualsTreeAsync(store);
    }

    /// <summary>Opens the store as another process would; disposed after the test unless not <paramref name="owned"/>.</summary>
    private FileSystemRegistryStore Open(bool owned = true)
    {
        var store = FileSystemRegistryStore.Open(_data, TimeProvider.System, NullLogger.Instance);
        if (owned)
        {
            _opened.Add(store);
        }

        return store;
    }

    /// <summary>Holds the store's next index write between its two steps: the step it reached, and the gate that releases it.</summary>
    private static (TaskCompletionSource<string> Reached, TaskCompletionSource Release) HoldNextWrite(FileSystemRegistryStore store)
    {
        var reached = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource();
        store.Index.WriteGate = async step =>
        {
            reached.TrySetResult(step);
            await release.Task;
        };
        return (reached, release);
    }

    private static async Task FillAsync(FileSystemRegistryStore store)
    {
        foreach (var repository in new[] { "team/app/nested", "app", "team/app" })
        {
            await store.Repositories.PutManifestRevisionAsync(repository, Manifest, MediaTypes.OciManifest, None);
            await store.Repositories.SetTagAsync(repository, "v1", Manifest, None);
        }

        await store.Repositories.SetTagAsync("app", "v2", Manifest, None);
    }

    private async Task AssertIndexEqualsTreeAsync(FileSystemRegistryStore store) =>
        Assert.Equal(RepositoryIndex.ReadTree(Layout), await store.Index.ReadKeysAsync(None));

    private void Damage(string damage)
    {
        var (file, how) = (damage[..damage.IndexOf(':', StringComparison.Ordinal)], damage[(damage.IndexOf(':', StringComparison.Ordinal) + 2)..]);
        var path = file == "snapshot" ? Layout.IndexSnapshot : Layout.IndexJournal;
        var bytes = File.ReadAllBytes(path);
        switch (how)
        {
            case "a flipped byte":
                bytes[bytes.Length / 2] ^= 0x01;
                break;
            case "cut short":
                bytes = bytes[..(bytes.Length * 2 / 3)];
                break;
            case "another format":
                bytes = Encoding.ASCII.GetBytes("something else entirely\n");
                break;
            case "a record that does not check out":
                bytes = [.. bytes, .. Encoding.ASCII.GetBytes("+tapp:forged 12345678\n")];
                break;
            case "of another snapshot":
                var text = Encoding.ASCII.GetString(bytes);
                var header = text[..text.IndexOf('\n', StringComparison.Ordinal)];
                bytes = Encoding.ASCII.GetBytes(header[..header.LastIndexOf(' ')] + " 999" + text[header.Length..]);
                break;
        }

        File.WriteAllBytes(path, bytes);
    }

    private static long ReadGeneration(string snapshot) =>
        long.Parse(File.ReadLines(snapshot).First().Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture);
}
