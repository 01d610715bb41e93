using System.Text;
using Airlock.Content;
using Airlock.Oci;
using Airlock.Tests.Registry;
using Airlock.Tests.Registry.Auth;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>
/// What every <see cref="IRegistryStore"/> guarantees (docs/storage.md), as containerd's content store test suite
/// does for its stores: an implementation subclasses this with a factory and passes every test. Each test works on
/// fresh, empty storage; <see cref="OpenAsync"/> may be called more than once in a test, and each call is another
/// process or replica opening the same storage (a restart, <c>airlock registry gc</c> beside the registry, a second
/// replica). Time is the test's <see cref="ManualTimeProvider"/>, moved by hand: no test sleeps.
/// </summary>
public abstract class RegistryStoreContract : IAsyncLifetime
{
    private readonly List<IRegistryStore> _opened = [];

    private readonly ManualTimeProvider _clock = new();

    /// <summary>The store under test, opened to serve (as <c>airlock registry</c> opens it).</summary>
    protected IRegistryStore Store { get; private set; } = null!;

    public async Task InitializeAsync() => Store = await OpenAsync();

    public async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }

        await DeleteStorageAsync();
    }

    /// <summary>Opens another instance of the store on the same storage, with the test's clock; disposed after the test.</summary>
    protected async Task<IRegistryStore> OpenAsync(bool forCollection = false)
    {
        var store = await OpenStoreAsync(_clock, forCollection);
        _opened.Add(store);
        return store;
    }

    /// <summary>Ends an instance as a crashed process ends: nothing it had in flight is finished or aborted.</summary>
    protected async Task CrashAsync(IRegistryStore store)
    {
        _opened.Remove(store);
        await store.DisposeAsync();
    }

    /// <summary>Opens the store under test on this test's storage (to serve, or for collection as <c>registry gc</c> does).</summary>
    protected abstract Task<IRegistryStore> OpenStoreAsync(TimeProvider time, bool forCollection);

    /// <summary>How many unfinished blob writes the storage holds outside the store's blobs (temp files, incomplete multipart uploads).</summary>
    protected abstract Task<int> CountIngestLeftoversAsync();

    /// <summary>Removes the test's storage.</summary>
    protected abstract Task DeleteStorageAsync();

    private static CancellationToken None => CancellationToken.None;

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    // ---- Blobs: ingest, verification, visibility ----

    [Fact]
    public async Task A_blob_is_invisible_while_written_and_visible_whole_once_committed()
    {
        var content = Bytes("a blob written in two parts");
        var digest = Digest.Sha256(content);
        await using var writer = await Store.Blobs.BeginWriteAsync(Digest.Sha256Algorithm, None);
        await writer.WriteAsync(content.AsMemory(0, 10), None);
        Assert.Equal(10, writer.Length);
        Assert.Null(await Store.Blobs.StatAsync(digest, None));
        Assert.Null(await Store.Blobs.OpenReadAsync(digest, None));
        Assert.Empty(await ListBlobsAsync(Store));

        await writer.WriteAsync(content.AsMemory(10), None);
        Assert.Equal(digest, writer.CurrentDigest());
        Assert.Equal(digest, await writer.CommitAsync(digest, None));

        var info = Assert.IsType<BlobInfo>(await Store.Blobs.StatAsync(digest, None));
        Assert.Equal(content.Length, info.Size);
        Assert.Equal(_clock.GetUtcNow(), info.LastReferenced);
        Assert.Equal(content, await ReadAllAsync(Store, digest));
        Assert.Equal(content, await Store.Blobs.ReadSmallAsync(digest, content.Length, None));
        Assert.Null(await Store.Blobs.ReadSmallAsync(digest, content.Length - 1, None));
        Assert.Equal([digest], (await ListBlobsAsync(Store)).Select(b => b.Digest));
        Assert.Equal(0, await CountIngestLeftoversAsync());
    }

    [Fact]
    public async Task Content_that_does_not_match_its_digest_stores_nothing()
    {
        var claimed = Digest.Sha256(Bytes("what the client claimed"));
        await using (var writer = await Store.Blobs.BeginWriteAsync(Digest.Sha256Algorithm, None))
        {
            await writer.WriteAsync(Bytes("what the client sent"), None);
            var error = await Assert.ThrowsAsync<DigestMismatchException>(() => writer.CommitAsync(claimed, None));
            Assert.Equal(claimed, error.Expected);
        }

        await Assert.ThrowsAsync<DigestMismatchException>(() => Store.Blobs.WriteAsync(new MemoryStream(Bytes("sent again")), claimed, None));
        Assert.Null(await Store.Blobs.StatAsync(claimed, None));
        Assert.Empty(await ListBlobsAsync(Store));
        Assert.Equal(0, await CountIngestLeftoversAsync());
    }

    [Fact]
    public async Task An_aborted_or_abandoned_write_leaves_nothing()
    {
        var aborted = await Store.Blobs.BeginWriteAsync(Digest.Sha256Algorithm, None);
        await aborted.WriteAsync(Bytes("aborted"), None);
        await aborted.AbortAsync();
        await aborted.DisposeAsync();

        await using (var abandoned = await Store.Blobs.BeginWriteAsync(Digest.Sha256Algorithm, None))
        {
            await abandoned.WriteAsync(Bytes("abandoned: disposed without a commit"), None);
        }

        Assert.Empty(await ListBlobsAsync(Store));
        Assert.Equal(0, await CountIngestLeftoversAsync());
    }

    [Fact]
    public async Task A_write_longer_than_its_limit_is_refused_and_leaves_nothing()
    {
        var content = new byte[1 << 20];
        var error = await Assert.ThrowsAsync<BlobTooLargeException>(() => Store.Blobs.WriteAsync(new MemoryStream(content), null, None, maxLength: 1000));
        Assert.Equal(1000, error.Limit);
        Assert.Empty(await ListBlobsAsync(Store));
        Assert.Equal(0, await CountIngestLeftoversAsync());
    }

    [Fact]
    public async Task Writing_stored_content_again_keeps_one_blob_and_refreshes_its_reference_time()
    {
        var content = Bytes("pushed twice");
        var digest = await Store.Blobs.WriteAsync(new MemoryStream(content), null, None);
        var first = (await Store.Blobs.StatAsync(digest, None))!.Value.LastReferenced;
        _clock.Advance(TimeSpan.FromHours(2));

        Assert.Equal(digest, await Store.Blobs.WriteAsync(content, digest, None));
        var again = Assert.Single(await ListBlobsAsync(Store));
        Assert.Equal(first + TimeSpan.FromHours(2), again.LastReferenced);

        _clock.Advance(TimeSpan.FromHours(1));
        await Store.Blobs.TouchAsync(digest, None);
        Assert.Equal(_clock.GetUtcNow(), (await Store.Blobs.StatAsync(digest, None))!.Value.LastReferenced);
        Assert.Equal(content, await ReadAllAsync(Store, digest));
    }

    [Fact]
    public async Task A_blob_can_be_committed_under_a_digest_of_another_algorithm_than_it_was_hashed_with()
    {
        var content = Bytes("hashed as sha256 while written, committed as sha512");
        var sha512 = Digest.FromHash(Digest.Sha512Algorithm, System.Security.Cryptography.SHA512.HashData(content));
        await using (var writer = await Store.Blobs.BeginWriteAsync(Digest.Sha256Algorithm, None))
        {
            await writer.WriteAsync(content, None);
            Assert.Equal(sha512, await writer.CommitAsync(sha512, None));
        }

        Assert.Equal(content, await ReadAllAsync(Store, sha512));
        Assert.Null(await Store.Blobs.StatAsync(Digest.Sha256(content), None));
    }

    [Fact]
    public async Task A_blob_being_written_can_be_read_behind_the_writer_where_the_store_allows()
    {
        await using var writer = await Store.Blobs.BeginWriteAsync(Digest.Sha256Algorithm, None);
        await writer.WriteAsync(Bytes("first part|"), None);
        var reader = writer.OpenWritten();
        if (reader is null)
        {
            return;
        }

        await using (reader)
        {
            await writer.WriteAsync(Bytes("second part"), None);
            var buffer = new byte[writer.Length];
            await reader.ReadExactlyAsync(buffer, None);
            Assert.Equal("first part|second part", Encoding.UTF8.GetString(buffer));
        }
    }

    [Fact]
    public async Task Deleting_a_blob_removes_it_and_deleting_a_missing_one_says_so()
    {
        var digest = await Store.Blobs.WriteAsync(new MemoryStream(Bytes("to delete")), null, None);
        Assert.True(await Store.Blobs.DeleteAsync(digest, None));
        Assert.Null(await Store.Blobs.StatAsync(digest, None));
        Assert.False(await Store.Blobs.DeleteAsync(digest, None));
        await Store.Blobs.TouchAsync(digest, None);
        Assert.Null(await Store.Blobs.StatAsync(digest, None));
    }

    [Fact]
    public async Task Writes_left_unfinished_by_a_crash_are_removed_when_the_store_is_next_opened()
    {
        var crashed = await OpenAsync();
        var writer = await crashed.Blobs.BeginWriteAsync(Digest.Sha256Algorithm, None);
        await writer.WriteAsync(new byte[64 * 1024], None);
        await CrashAsync(crashed);
        await CrashAsync(Store);
        Assert.True(await CountIngestLeftoversAsync() > 0, "the write in flight left nothing to clean");

        // A day later: a store shared by replicas can tell a dead writer from one alive elsewhere only by its age.
        _clock.Advance(TimeSpan.FromDays(1));
        Store = await OpenAsync();
        Assert.Equal(0, await CountIngestLeftoversAsync());
        Assert.Empty(await ListBlobsAsync(Store));
        await writer.DisposeAsync();
    }

    [Fact]
    public async Task Concurrent_writers_of_the_same_content_and_readers_of_it_all_see_the_whole_blob()
    {
        var content = new byte[3 << 20];
        new Random(7).NextBytes(content);
        var digest = Digest.Sha256(content);
        var second = await OpenAsync();
        var all = Enumerable.Range(0, 8).Select(async i =>
        {
            var store = i % 2 == 0 ? Store : second;
            Assert.Equal(digest, await store.Blobs.WriteAsync(new MemoryStream(content), digest, None));
            Assert.Equal(content, await ReadAllAsync(store, digest));
        });
        await Task.WhenAll(all);
        Assert.Single(await ListBlobsAsync(Store));
        Assert.Equal(0, await CountIngestLeftoversAsync());
    }

    // ---- Repositories: links, manifests, tags, referrers, marks ----

    [Fact]
    public async Task Links_belong_to_one_repository_and_carry_the_time_they_were_made()
    {
        var repositories = Store.Repositories;
        var blob = Digest.Sha256(Bytes("blob"));
        Assert.False(await repositories.ExistsAsync("org/app", None));
        await repositories.LinkBlobAsync("org/app", blob, None);
        Assert.True(await repositories.ExistsAsync("org/app", None));
        Assert.Equal(new BlobLink(blob, _clock.GetUtcNow()), await repositories.GetBlobLinkAsync("org/app", blob, None));
        Assert.Null(await repositories.GetBlobLinkAsync("org/other", blob, None));

        _clock.Advance(TimeSpan.FromMinutes(5));
        await repositories.LinkBlobAsync("org/app", blob, None);
        Assert.Equal([new BlobLink(blob, _clock.GetUtcNow())], await ListLinksAsync(repositories, "org/app"));

        Assert.True(await repositories.UnlinkBlobAsync("org/app", blob, None));
        Assert.False(await repositories.UnlinkBlobAsync("org/app", blob, None));
        Assert.Empty(await ListLinksAsync(repositories, "org/app"));
    }

    [Fact]
    public async Task Manifest_revisions_keep_their_media_type_and_tags_point_at_them()
    {
        var repositories = Store.Repositories;
        var one = Digest.Sha256(Bytes("manifest one"));
        var two = Digest.Sha256(Bytes("manifest two"));
        await repositories.PutManifestRevisionAsync("app", one, MediaTypes.OciManifest, None);
        await repositories.PutManifestRevisionAsync("app", two, MediaTypes.DockerManifestList, None);
        Assert.Equal(MediaTypes.OciManifest, await repositories.ManifestMediaTypeAsync("app", one, None));
        Assert.Equal(MediaTypes.DockerManifestList, await repositories.ManifestMediaTypeAsync("app", two, None));
        Assert.Null(await repositories.ManifestMediaTypeAsync("other", one, None));
        Assert.Equal(new[] { one, two }.Select(d => d.ToString()).Order(StringComparer.Ordinal), (await ListRevisionsAsync(repositories, "app")).Select(d => d.ToString()).Order(StringComparer.Ordinal));

        await repositories.SetTagAsync("app", "latest", one, None);
        Assert.Equal(one, await repositories.ResolveTagAsync("app", "latest", None));
        await repositories.SetTagAsync("app", "latest", two, None);
        Assert.Equal(two, await repositories.ResolveTagAsync("app", "latest", None));
        Assert.Null(await repositories.ResolveTagAsync("app", "missing", None));
        Assert.Null(await repositories.ResolveTagAsync("other", "latest", None));

        Assert.True(await repositories.DeleteTagAsync("app", "latest", None));
        Assert.False(await repositories.DeleteTagAsync("app", "latest", None));
        Assert.Null(await repositories.ResolveTagAsync("app", "latest", None));
        Assert.True(await repositories.DeleteManifestRevisionAsync("app", one, None));
        Assert.False(await repositories.DeleteManifestRevisionAsync("app", one, None));
        Assert.Null(await repositories.ManifestMediaTypeAsync("app", one, None));
    }

    [Fact]
    public async Task Referrers_are_listed_by_digest_per_subject_and_repository()
    {
        var repositories = Store.Repositories;
        var subject = Digest.Sha256(Bytes("subject"));
        var referrers = Enumerable.Range(0, 3)
            .Select(i => new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256(Bytes("referrer " + i)), Size = 10 + i, ArtifactType = "application/x-test" })
            .ToList();
        foreach (var referrer in referrers)
        {
            await repositories.AddReferrerAsync("app", subject, referrer, None);
        }

        var listed = await repositories.ListReferrersAsync("app", subject, None);
        Assert.Equal(referrers.Select(r => r.Digest.ToString()).Order(StringComparer.Ordinal), listed.Select(r => r.Digest.ToString()));
        Assert.All(listed, r => Assert.Equal("application/x-test", r.ArtifactType));
        Assert.Empty(await repositories.ListReferrersAsync("other", subject, None));
        Assert.Empty(await repositories.ListReferrersAsync("app", referrers[0].Digest, None));

        await repositories.RemoveReferrerAsync("app", subject, referrers[1].Digest, None);
        Assert.Equal(2, (await repositories.ListReferrersAsync("app", subject, None)).Count);
    }

    [Fact]
    public async Task The_authenticated_only_mark_is_kept_and_listed_in_order()
    {
        await Store.Repositories.MarkAuthenticatedOnlyAsync("cache/b", None);
        await Store.Repositories.MarkAuthenticatedOnlyAsync("cache/a", None);
        await Store.Repositories.MarkAuthenticatedOnlyAsync("cache/a", None);
        var reopened = await OpenAsync();
        Assert.Equal(["cache/a", "cache/b"], await reopened.Repositories.ListAuthenticatedOnlyAsync(None));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/../../b")]
    [InlineData("/absolute")]
    [InlineData("UPPER")]
    [InlineData("trailing/")]
    public async Task Names_that_are_not_repository_names_are_refused(string repository)
    {
        var digest = Digest.Sha256(Bytes("x"));
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.Repositories.LinkBlobAsync(repository, digest, None));
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.Repositories.SetTagAsync(repository, "v1", digest, None));
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.Repositories.PutManifestRevisionAsync(repository, digest, MediaTypes.OciManifest, None));
        Assert.Empty((await Store.Repositories.ListRepositoriesAsync(null, int.MaxValue, None)).Names);
    }

    [Theory]
    [InlineData("../../x")]
    [InlineData(".hidden")]
    public async Task Tags_that_are_not_tags_are_refused(string tag)
    {
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.Repositories.SetTagAsync("app", tag, Digest.Sha256(Bytes("x")), None));
    }

    // ---- Listing order and paging ----

    [Fact]
    public async Task Repositories_are_listed_in_the_spec_s_lexical_order_and_paged_after_any_name()
    {
        // Ordinal order: '-' < '.' < '/' < digits < '_' < letters; nested names sit among the others by their bytes.
        string[] names = ["a", "a-b", "a.b", "a/b", "a/b/c", "a0", "a_b", "ab", "b", "library/alpine", "z"];
        foreach (var name in Enumerable.Reverse(names))
        {
            await Store.Repositories.LinkBlobAsync(name, Digest.Sha256(Bytes(name)), None);
        }

        var all = await Store.Repositories.ListRepositoriesAsync(null, int.MaxValue, None);
        Assert.Equal(names, all.Names);
        Assert.False(all.HasMore);

        var walked = new List<string>();
        string? last = null;
        while (true)
        {
            var page = await Store.Repositories.ListRepositoriesAsync(last, 3, None);
            Assert.True(page.Names.Count <= 3);
            walked.AddRange(page.Names);
            if (!page.HasMore)
            {
                break;
            }

            last = page.Names[^1];
        }

        Assert.Equal(names, walked);

        // A last that names no repository (never created, or deleted since the previous page) still gives the next page.
        Assert.Equal(["a/b/c", "a0"], (await Store.Repositories.ListRepositoriesAsync("a/b/a", 2, None)).Names);
        Assert.Equal(["b", "library/alpine"], (await Store.Repositories.ListRepositoriesAsync("abc", 2, None)).Names);
        Assert.Equal(["a"], (await Store.Repositories.ListRepositoriesAsync("", 1, None)).Names);
        var end = await Store.Repositories.ListRepositoriesAsync("z", 10, None);
        Assert.Empty(end.Names);
        Assert.False(end.HasMore);
        var exact = await Store.Repositories.ListRepositoriesAsync("library/alpine", 1, None);
        Assert.Equal(["z"], exact.Names);
        Assert.False(exact.HasMore);
    }

    [Fact]
    public async Task Tags_are_listed_in_ordinal_order_and_paged_after_any_tag_even_a_deleted_one()
    {
        var manifest = Digest.Sha256(Bytes("manifest"));
        await Store.Repositories.PutManifestRevisionAsync("app", manifest, MediaTypes.OciManifest, None);
        Assert.Empty((await Store.Repositories.ListTagsAsync("app", null, 10, None))!.Names);
        Assert.Null(await Store.Repositories.ListTagsAsync("none", null, 10, None));

        string[] tags = ["1.0", "V1", "latest", "v1", "v1.0", "v10", "v1_0", "v2"];
        foreach (var tag in Enumerable.Reverse(tags))
        {
            await Store.Repositories.SetTagAsync("app", tag, manifest, None);
        }

        Assert.Equal(tags, (await Store.Repositories.ListTagsAsync("app", null, int.MaxValue, None))!.Names);
        var first = (await Store.Repositories.ListTagsAsync("app", null, 3, None))!;
        Assert.Equal(["1.0", "V1", "latest"], first.Names);
        Assert.True(first.HasMore);

        await Store.Repositories.DeleteTagAsync("app", "latest", None);
        var next = (await Store.Repositories.ListTagsAsync("app", "latest", 3, None))!;
        Assert.Equal(["v1", "v1.0", "v10"], next.Names);
        Assert.True(next.HasMore);
        Assert.Equal(["v1_0", "v2"], (await Store.Repositories.ListTagsAsync("app", "v10-never", 5, None))!.Names);
        var last = (await Store.Repositories.ListTagsAsync("app", "v1_0", 1, None))!;
        Assert.Equal(["v2"], last.Names);
        Assert.False(last.HasMore);
    }

    [Fact]
    public async Task An_emptied_repository_can_be_deleted_and_a_page_after_its_name_is_still_the_right_one()
    {
        var manifest = Digest.Sha256(Bytes("manifest"));
        var layer = Digest.Sha256(Bytes("layer"));
        foreach (var name in new[] { "a", "b", "b/c", "c" })
        {
            await Store.Repositories.LinkBlobAsync(name, layer, None);
            await Store.Repositories.PutManifestRevisionAsync(name, manifest, MediaTypes.OciManifest, None);
            await Store.Repositories.SetTagAsync(name, "v1", manifest, None);
        }

        var other = await OpenAsync();
        var first = await other.Repositories.ListRepositoriesAsync(null, 2, None);
        Assert.Equal(["a", "b"], first.Names);
        Assert.True(first.HasMore);

        // Only a repository holding nothing goes; one that holds anything, or none at all, is not deleted.
        Assert.False(await Store.Repositories.DeleteRepositoryIfEmptyAsync("b", None));
        Assert.False(await Store.Repositories.DeleteRepositoryIfEmptyAsync("never", None));
        await Store.Repositories.DeleteTagAsync("b", "v1", None);
        Assert.False(await Store.Repositories.DeleteRepositoryIfEmptyAsync("b", None));
        await Store.Repositories.DeleteManifestRevisionAsync("b", manifest, None);
        Assert.False(await Store.Repositories.DeleteRepositoryIfEmptyAsync("b", None));
        await Store.Repositories.UnlinkBlobAsync("b", layer, None);
        Assert.True(await Store.Repositories.DeleteRepositoryIfEmptyAsync("b", None));
        Assert.False(await Store.Repositories.DeleteRepositoryIfEmptyAsync("b", None));

        // The client that read the first page asks for the next one after a name that is gone: nested names stay.
        Assert.False(await other.Repositories.ExistsAsync("b", None));
        Assert.Null(await other.Repositories.ListTagsAsync("b", null, 10, None));
        var next = await other.Repositories.ListRepositoriesAsync(first.Names[^1], 2, None);
        Assert.Equal(["b/c", "c"], next.Names);
        Assert.False(next.HasMore);
        Assert.Equal(["a", "b/c", "c"], (await other.Repositories.ListRepositoriesAsync(null, int.MaxValue, None)).Names);

        // Written to again, it exists again, with only what was written since.
        await other.Repositories.SetTagAsync("b", "v2", manifest, None);
        Assert.Equal(["a", "b", "b/c", "c"], (await Store.Repositories.ListRepositoriesAsync(null, int.MaxValue, None)).Names);
        Assert.Equal(["v2"], (await Store.Repositories.ListTagsAsync("b", null, 10, None))!.Names);
    }

    [Fact]
    public async Task Long_listings_walked_in_pages_from_another_instance_give_every_name_once_in_order()
    {
        var manifest = Digest.Sha256(Bytes("manifest"));
        var random = new Random(15);
        var tags = Enumerable.Range(0, 300).Select(i => $"build-{i}").ToList();
        var repositories = Enumerable.Range(0, 150).Select(i => $"team{i % 7}/app{i}").ToList();
        await Store.Repositories.PutManifestRevisionAsync("ci/app", manifest, MediaTypes.OciManifest, None);
        foreach (var tag in tags.OrderBy(_ => random.Next()))
        {
            await Store.Repositories.SetTagAsync("ci/app", tag, manifest, None);
        }

        foreach (var repository in repositories.OrderBy(_ => random.Next()))
        {
            await Store.Repositories.LinkBlobAsync(repository, manifest, None);
        }

        tags.Sort(StringComparer.Ordinal);
        repositories.Add("ci/app");
        repositories.Sort(StringComparer.Ordinal);
        var other = await OpenAsync();
        Assert.Equal(tags, await WalkAsync(async (last, n) => (await other.Repositories.ListTagsAsync("ci/app", last, n, None))!, 100));
        Assert.Equal(repositories, await WalkAsync((last, n) => other.Repositories.ListRepositoriesAsync(last, n, None).AsTask(), 100));
        Assert.Equal(tags, await WalkAsync(async (last, n) => (await other.Repositories.ListTagsAsync("ci/app", last, n, None))!, 1));

        // Names deleted between two pages, the last one of the page read among them, leave the rest of the walk right.
        var page = (await other.Repositories.ListTagsAsync("ci/app", null, 100, None))!;
        foreach (var tag in new[] { page.Names[^1], tags[100], tags[101] })
        {
            await Store.Repositories.DeleteTagAsync("ci/app", tag, None);
        }

        var rest = (await other.Repositories.ListTagsAsync("ci/app", page.Names[^1], 100, None))!;
        Assert.Equal(tags.Skip(102).Take(100), rest.Names);
        Assert.True(rest.HasMore);
    }

    [Fact]
    public async Task Concurrent_pushes_and_deletes_of_the_same_repositories_leave_the_listings_equal_to_the_repositories()
    {
        var manifest = Digest.Sha256(Bytes("manifest"));
        string[] names = ["app", "app/nested", "other", "team/app"];
        string[] tagNames = ["latest", "v1", "v2"];
        var second = await OpenAsync();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async worker =>
        {
            var store = worker % 2 == 0 ? Store : second;
            var random = new Random(worker);
            for (var step = 0; step < 40; step++)
            {
                var repository = names[random.Next(names.Length)];
                var tag = tagNames[random.Next(tagNames.Length)];
                switch (random.Next(4))
                {
                    case 0:
                    case 1:
                        await store.Repositories.PutManifestRevisionAsync(repository, manifest, MediaTypes.OciManifest, None);
                        await store.Repositories.SetTagAsync(repository, tag, manifest, None);
                        break;
                    case 2:
                        await store.Repositories.DeleteTagAsync(repository, tag, None);
                        break;
                    default:
                        // Empty it and delete it, racing the other workers' pushes to it.
                        foreach (var each in tagNames)
                        {
                            await store.Repositories.DeleteTagAsync(repository, each, None);
                        }

                        await store.Repositories.DeleteManifestRevisionAsync(repository, manifest, None);
                        await store.Repositories.DeleteRepositoryIfEmptyAsync(repository, None);
                        break;
                }

                var listed = await store.Repositories.ListRepositoriesAsync(null, int.MaxValue, None);
                Assert.Equal(listed.Names.Order(StringComparer.Ordinal).Distinct(), listed.Names);
            }
        }));

        var third = await OpenAsync();
        foreach (var store in new[] { Store, second, third })
        {
            var existing = new List<string>();
            foreach (var name in names)
            {
                if (await store.Repositories.ExistsAsync(name, None))
                {
                    existing.Add(name);
                }
            }

            Assert.Equal(existing, (await store.Repositories.ListRepositoriesAsync(null, int.MaxValue, None)).Names);
            Assert.Equal(existing, await WalkAsync((last, n) => store.Repositories.ListRepositoriesAsync(last, n, None).AsTask(), 1));
            foreach (var name in existing)
            {
                var resolving = new List<string>();
                foreach (var tag in tagNames)
                {
                    if (await store.Repositories.ResolveTagAsync(name, tag, None) is not null)
                    {
                        resolving.Add(tag);
                    }
                }

                Assert.Equal(resolving, (await store.Repositories.ListTagsAsync(name, null, int.MaxValue, None))!.Names);
            }
        }
    }

    /// <summary>Every name of a listing, asked <paramref name="pageSize"/> at a time as a client follows Link headers.</summary>
    private static async Task<List<string>> WalkAsync(Func<string?, int, Task<ListingPage>> list, int pageSize)
    {
        var names = new List<string>();
        string? last = null;
        while (true)
        {
            var page = await list(last, pageSize);
            Assert.True(page.Names.Count <= pageSize);
            Assert.True(!page.HasMore || page.Names.Count == pageSize, "a page short of its size says more follow");
            names.AddRange(page.Names);
            if (!page.HasMore)
            {
                return names;
            }

            last = page.Names[^1];
        }
    }

    [Fact]
    public async Task Every_instance_on_the_same_storage_sees_a_write_once_it_returned()
    {
        var manifest = Digest.Sha256(Bytes("manifest"));
        var other = await OpenAsync();
        await Store.Repositories.PutManifestRevisionAsync("app", manifest, MediaTypes.OciManifest, None);
        await Store.Repositories.SetTagAsync("app", "v1", manifest, None);
        Assert.Equal(manifest, await other.Repositories.ResolveTagAsync("app", "v1", None));
        Assert.Equal(["app"], (await other.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        Assert.Equal(["v1"], (await other.Repositories.ListTagsAsync("app", null, 10, None))!.Names);

        var blob = await other.Blobs.WriteAsync(new MemoryStream(Bytes("blob")), null, None);
        Assert.Equal(Bytes("blob"), await ReadAllAsync(Store, blob));
    }

    [Fact]
    public async Task Concurrent_tag_writes_leave_the_tag_on_one_of_the_written_digests_and_listings_whole()
    {
        var digests = Enumerable.Range(0, 16).Select(i => Digest.Sha256(Bytes("manifest " + i))).ToArray();
        var second = await OpenAsync();
        await Task.WhenAll(digests.Select(async (digest, i) =>
        {
            var store = i % 2 == 0 ? Store : second;
            await store.Repositories.PutManifestRevisionAsync($"team{i % 4}/app", digest, MediaTypes.OciManifest, None);
            await store.Repositories.SetTagAsync($"team{i % 4}/app", "latest", digest, None);
            await store.Repositories.SetTagAsync($"team{i % 4}/app", "v" + i, digest, None);
            var listed = await store.Repositories.ListRepositoriesAsync(null, int.MaxValue, None);
            Assert.Equal(listed.Names.Order(StringComparer.Ordinal).Distinct(), listed.Names);
        }));

        for (var team = 0; team < 4; team++)
        {
            var resolved = await Store.Repositories.ResolveTagAsync($"team{team}/app", "latest", None);
            Assert.Contains(resolved!.Value, digests.Where((_, i) => i % 4 == team));
            Assert.Equal(5, (await Store.Repositories.ListTagsAsync($"team{team}/app", null, int.MaxValue, None))!.Names.Count);
        }
    }

    // ---- Upload sessions ----

    [Fact]
    public async Task An_upload_session_is_resumed_by_another_instance_and_its_blob_appears_only_at_commit()
    {
        var content = Bytes("first chunk|second chunk|last chunk");
        var digest = Digest.Sha256(content);
        var id = await Store.Uploads.CreateAsync("app", None);
        var created = await Store.Uploads.FindAsync(id, None);
        Assert.Equal(new UploadSessionInfo(id, "app", 0, _clock.GetUtcNow()), created! with { StartedAt = null });
        Assert.True(created.StartedAt is null || created.StartedAt == _clock.GetUtcNow(), $"started at {created.StartedAt}, created at {_clock.GetUtcNow()}");
        await using (var session = (await Store.Uploads.OpenAsync(id, None))!)
        {
            Assert.Equal("app", session.Repository);
            Assert.Equal(12, await session.AppendAsync(new MemoryStream(content[..12]), None));
        }

        // Another replica (or this one after a restart) continues it.
        _clock.Advance(TimeSpan.FromMinutes(1));
        var other = await OpenAsync();
        var found = (await other.Uploads.FindAsync(id, None))!;
        Assert.Equal(12, found.Length);
        await using (var session = (await other.Uploads.OpenAsync(id, None))!)
        {
            Assert.Equal(12, session.Length);
            await session.AppendAsync(new MemoryStream(content[12..25]), None);
        }

        Assert.Equal(_clock.GetUtcNow(), (await Store.Uploads.FindAsync(id, None))!.LastActivity);
        Assert.Null(await Store.Blobs.StatAsync(digest, None));
        await using (var session = (await Store.Uploads.OpenAsync(id, None))!)
        {
            Assert.Equal(25, session.Length);
            await session.AppendAsync(new MemoryStream(content[25..]), None);
            Assert.Null(await other.Blobs.StatAsync(digest, None));
            Assert.Equal(digest, await session.CommitAsync(digest, None));
        }

        Assert.Equal(content, await ReadAllAsync(other, digest));
        Assert.Null(await Store.Uploads.FindAsync(id, None));
        Assert.Null(await other.Uploads.OpenAsync(id, None));
        Assert.Empty(await ListSessionsAsync(Store));
    }

    [Fact]
    public async Task An_upload_committed_under_the_wrong_digest_stores_nothing_and_ends()
    {
        var id = await Store.Uploads.CreateAsync("app", None);
        var wrong = Digest.Sha256(Bytes("something else"));
        await using (var session = (await Store.Uploads.OpenAsync(id, None))!)
        {
            await session.AppendAsync(new MemoryStream(Bytes("content")), None);
            await Assert.ThrowsAsync<DigestMismatchException>(() => session.CommitAsync(wrong, None));
        }

        Assert.Null(await Store.Blobs.StatAsync(wrong, None));
        Assert.Empty(await ListBlobsAsync(Store));
        Assert.Null(await Store.Uploads.FindAsync(id, None));
    }

    [Fact]
    public async Task A_cancelled_upload_is_gone_with_its_bytes_and_an_unknown_one_is_not_found()
    {
        var id = await Store.Uploads.CreateAsync("app", None);
        await using (var session = (await Store.Uploads.OpenAsync(id, None))!)
        {
            await session.AppendAsync(new MemoryStream(Bytes("cancelled")), None);
            await session.CancelAsync();
        }

        Assert.Null(await Store.Uploads.FindAsync(id, None));
        Assert.Null(await Store.Uploads.OpenAsync(id, None));
        Assert.Empty(await ListSessionsAsync(Store));
        Assert.Null(await Store.Uploads.FindAsync(Guid.NewGuid().ToString("D"), None));
        Assert.Null(await Store.Uploads.FindAsync("../../etc", None));
        Assert.Null(await Store.Uploads.OpenAsync("not-an-id", None));
        Assert.False(await Store.Uploads.TryDeleteIdleAsync("../../etc", DateTimeOffset.MaxValue, None));
        Assert.Empty(await ListBlobsAsync(Store));
    }

    [Fact]
    public async Task An_upload_survives_a_crash_of_the_process_serving_it()
    {
        var crashed = await OpenAsync();
        var id = await crashed.Uploads.CreateAsync("app", None);
        await using (var session = (await crashed.Uploads.OpenAsync(id, None))!)
        {
            await session.AppendAsync(new MemoryStream(Bytes("before the crash|")), None);
        }

        await CrashAsync(crashed);
        await CrashAsync(Store);
        Store = await OpenAsync();
        await using (var session = (await Store.Uploads.OpenAsync(id, None))!)
        {
            Assert.Equal(17, session.Length);
            await session.AppendAsync(new MemoryStream(Bytes("after")), None);
            await session.CommitAsync(Digest.Sha256(Bytes("before the crash|after")), None);
        }
    }

    [Fact]
    public async Task Requests_on_one_session_take_turns_across_instances()
    {
        var id = await Store.Uploads.CreateAsync("app", None);
        var other = await OpenAsync();
        var first = (await Store.Uploads.OpenAsync(id, None))!;
        await first.AppendAsync(new MemoryStream(Bytes("one|")), None);

        // A second request (through another instance) asks for the session while the first still writes to it: it
        // gets the session only after the first let go, and then sees everything the first wrote.
        var asking = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondOpened = Task.Run(async () =>
        {
            asking.SetResult();
            return (await other.Uploads.OpenAsync(id, None))!;
        });
        await asking.Task;
        var chunk = new byte[4 << 20];
        await first.AppendAsync(new MemoryStream(chunk), None);
        await first.DisposeAsync();
        await using (var second = await secondOpened)
        {
            Assert.Equal(4 + chunk.Length, second.Length);
            await second.AppendAsync(new MemoryStream(Bytes("three")), None);
            await second.CommitAsync(Digest.Sha256([.. Bytes("one|"), .. chunk, .. Bytes("three")]), None);
        }
    }

    [Fact]
    public async Task Idle_sessions_expire_but_never_while_held_or_active_again()
    {
        var idle = await Store.Uploads.CreateAsync("app", None);
        var held = await Store.Uploads.CreateAsync("app", None);
        var revived = await Store.Uploads.CreateAsync("app", None);
        _clock.Advance(TimeSpan.FromHours(2));
        var cutoff = _clock.GetUtcNow() - TimeSpan.FromHours(1);

        var collector = await OpenAsync(forCollection: true);
        await using (var request = (await Store.Uploads.OpenAsync(held, None))!)
        {
            Assert.False(await collector.Uploads.TryDeleteIdleAsync(held, cutoff, None));
        }

        await using (var request = (await Store.Uploads.OpenAsync(revived, None))!)
        {
            await request.AppendAsync(new MemoryStream(Bytes("active again")), None);
        }

        Assert.False(await collector.Uploads.TryDeleteIdleAsync(revived, cutoff, None));
        Assert.True(await collector.Uploads.TryDeleteIdleAsync(idle, cutoff, None));
        Assert.False(await collector.Uploads.TryDeleteIdleAsync(idle, cutoff, None));
        Assert.Null(await Store.Uploads.FindAsync(idle, None));
        Assert.Equal(new[] { held, revived }.Order(), (await ListSessionsAsync(Store)).Select(s => s.Id).Order());
    }

    // ---- What the console reads: last change and history ----

    [Fact]
    public async Task A_repository_s_last_change_is_known_once_it_exists_and_never_goes_back()
    {
        Assert.Null(await Store.Repositories.LastChangeAsync("app", None));

        var manifest = Digest.Sha256(Bytes("manifest"));
        await Store.Repositories.PutManifestRevisionAsync("app", manifest, MediaTypes.OciManifest, None);
        var revised = await Store.Repositories.LastChangeAsync("app", None);
        Assert.NotNull(revised);

        _clock.Advance(TimeSpan.FromMinutes(5));
        await Store.Repositories.SetTagAsync("app", "v1", manifest, None);
        var tagged = await (await OpenAsync()).Repositories.LastChangeAsync("app", None);
        Assert.NotNull(tagged);
        Assert.True(tagged >= revised, $"{tagged} is before {revised}");

        _clock.Advance(TimeSpan.FromMinutes(5));
        await Store.Repositories.DeleteTagAsync("app", "v1", None);
        var untagged = await Store.Repositories.LastChangeAsync("app", None);
        Assert.True(untagged >= tagged, $"{untagged} is before {tagged}");
        Assert.Null(await Store.Repositories.LastChangeAsync("other", None));
    }

    [Fact]
    public async Task History_is_shared_by_every_instance_and_a_sample_is_skipped_while_the_newest_is_younger_than_the_spacing()
    {
        var other = await OpenAsync();
        await Store.Blobs.WriteAsync(Bytes("some content"), Digest.Sha256(Bytes("some content")), None);
        Assert.Empty(await Store.History.ListSamplesAsync(None));

        await Store.SampleAsync(TimeSpan.FromHours(1), None);
        _clock.Advance(TimeSpan.FromMinutes(30));
        await other.SampleAsync(TimeSpan.FromHours(1), None);
        Assert.False(await other.History.AddSampleAsync(new StorageSample(_clock.GetUtcNow(), 1, 1), TimeSpan.FromHours(1), None));
        _clock.Advance(TimeSpan.FromMinutes(31));
        await other.SampleAsync(TimeSpan.FromHours(1), None);

        var samples = await Store.History.ListSamplesAsync(None);
        Assert.Equal(2, samples.Count);
        Assert.All(samples, sample => Assert.Equal((Bytes("some content").Length, 1L), (sample.Bytes, sample.Blobs)));
        Assert.True(samples[1].At - samples[0].At == TimeSpan.FromMinutes(61));

        var collection = new CollectionRecord(_clock.GetUtcNow(), _clock.GetUtcNow().AddSeconds(3), 5, 1, 100, 2, 0);
        await other.History.AddCollectionAsync(collection, None);
        Assert.Equal([collection], await Store.History.ListCollectionsAsync(None));

        var image = new Airlock.Distribution.LoadedImage("app", "v1", Digest.Sha256(Bytes("m")).ToString(), MediaTypes.OciManifest, "app:v1");
        var load = new LoadRecord("first", _clock.GetUtcNow(), "alice", "images.tar", [image]);
        await Store.History.AddLoadAsync(load, None);
        await other.History.AddLoadAsync(load with { Id = "second", User = null }, None);
        var loads = await Store.History.ListLoadsAsync(None);
        Assert.Equal(["first", "second"], loads.Select(l => l.Id));
        Assert.Equal((IEnumerable<Airlock.Distribution.LoadedImage>)[image], loads[0].Images);
        Assert.Equal(("alice", "images.tar"), (loads[0].User, loads[0].File));
    }

    [Fact]
    public async Task History_keeps_only_the_newest_records_up_to_its_capacity()
    {
        var start = _clock.GetUtcNow();
        for (var i = 0; i <= IStoreHistory.CollectionCapacity; i++)
        {
            await Store.History.AddCollectionAsync(new CollectionRecord(start.AddMinutes(i), start.AddMinutes(i), i, 0, 0, 0, 0), None);
        }

        var kept = await (await OpenAsync()).History.ListCollectionsAsync(None);
        Assert.Equal(IStoreHistory.CollectionCapacity, kept.Count);
        Assert.Equal(Enumerable.Range(1, IStoreHistory.CollectionCapacity), kept.Select(c => c.MarkedBlobs));
    }

    // ---- Garbage collection: marks, locks, leases ----

    [Fact]
    public async Task One_collection_runs_at_a_time_whichever_instance_starts_it()
    {
        var collector = await OpenAsync(forCollection: true);
        var run = await Store.Guard.TryBeginCollectionAsync(None);
        Assert.NotNull(run);
        Assert.Null(await Store.Guard.TryBeginCollectionAsync(None));
        Assert.Null(await collector.Guard.TryBeginCollectionAsync(None));
        await run.DisposeAsync();

        var next = await collector.Guard.TryBeginCollectionAsync(None);
        Assert.NotNull(next);
        Assert.Null(await Store.Guard.TryBeginCollectionAsync(None));
        await next.DisposeAsync();
    }

    [Fact]
    public async Task References_noted_during_a_collection_in_any_instance_are_seen_by_its_sweep()
    {
        var early = Digest.Sha256(Bytes("referenced before the collection"));
        var here = Digest.Sha256(Bytes("referenced here"));
        var elsewhere = Digest.Sha256(Bytes("referenced by another instance"));
        await using (var lease = await Store.Guard.EnterReferenceAsync(None))
        {
            await lease.NoteReferencedAsync(early, None);
        }

        var collector = await OpenAsync(forCollection: true);
        await using var run = (await collector.Guard.TryBeginCollectionAsync(None))!;
        await using (var lease = await collector.Guard.EnterReferenceAsync(None))
        {
            await lease.NoteReferencedAsync(here, None);
        }

        await using (var lease = await Store.Guard.EnterReferenceAsync(None))
        {
            await lease.NoteReferencedAsync(elsewhere, None);
        }

        await using var sweep = await run.EnterSweepAsync(None);
        Assert.True(await sweep.ReferencedSinceBeginAsync(here, None));
        Assert.True(await sweep.ReferencedSinceBeginAsync(elsewhere, None));
        Assert.False(await sweep.ReferencedSinceBeginAsync(Digest.Sha256(Bytes("never referenced")), None));
    }

    [Fact]
    public async Task A_sweep_waits_for_references_in_flight_and_references_wait_for_a_sweep()
    {
        var digest = Digest.Sha256(Bytes("referenced while the sweep waits"));
        var collector = await OpenAsync(forCollection: true);
        await using var run = (await collector.Guard.TryBeginCollectionAsync(None))!;

        // A reference in flight in the serving instance: the sweep gets in only after it, and then sees it.
        var lease = await Store.Guard.EnterReferenceAsync(None);
        var sweeping = Task.Run(async () =>
        {
            var sweep = await run.EnterSweepAsync(None);
            var seen = await sweep.ReferencedSinceBeginAsync(digest, None);
            return (sweep, seen);
        });
        await lease.NoteReferencedAsync(digest, None);
        await lease.DisposeAsync();
        var (held, seen) = await sweeping;
        Assert.True(seen);

        // While the sweep deletes, a reference waits, and finds the deletion done when it gets in.
        var stored = await Store.Blobs.WriteAsync(new MemoryStream(Bytes("deleted under the sweep")), null, None);
        var referencing = Task.Run(async () =>
        {
            await using var reference = await Store.Guard.EnterReferenceAsync(None);
            return await Store.Blobs.StatAsync(stored, None);
        });
        await collector.Blobs.DeleteAsync(stored, None);
        await held.DisposeAsync();
        Assert.Null(await referencing);
    }

    [Fact]
    public async Task Collection_keeps_referenced_young_and_pushed_to_content_and_removes_the_rest()
    {
        var image = TestImage.Create(Bytes("layer"));
        await PutImageAsync(Store, "app", "v1", image);
        var orphan = await PushBlobAsync(Store, "app", Bytes("an orphan"));
        var pushedTo = await PushBlobAsync(Store, "pushing", Bytes("uploaded for a manifest not yet put"));
        var oldSession = await Store.Uploads.CreateAsync("elsewhere", None);

        _clock.Advance(TimeSpan.FromHours(3));
        var young = await PushBlobAsync(Store, "app", Bytes("a young orphan"));
        var liveSession = await Store.Uploads.CreateAsync("pushing", None);

        var collector = await OpenAsync(forCollection: true);
        var dryRun = await new GarbageCollector(collector, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: true, None);
        Assert.Equal([orphan], dryRun.DeletedBlobs);
        Assert.NotNull(await Store.Blobs.StatAsync(orphan, None));

        var result = await new GarbageCollector(collector, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: false, None);
        Assert.Equal([orphan], result.DeletedBlobs);
        Assert.Equal(Bytes("an orphan").Length, result.DeletedBytes);
        Assert.Equal([("app", orphan)], result.DeletedLinks);
        Assert.Equal([oldSession], result.DeletedUploads);
        Assert.Equal(3, result.MarkedBlobs);

        Assert.Null(await Store.Blobs.StatAsync(orphan, None));
        Assert.Null(await Store.Repositories.GetBlobLinkAsync("app", orphan, None));
        foreach (var kept in new[] { image.ManifestDigest, image.ConfigDigest, image.LayerDigest, young, pushedTo })
        {
            Assert.NotNull(await Store.Blobs.StatAsync(kept, None));
        }

        Assert.NotNull(await Store.Repositories.GetBlobLinkAsync("pushing", pushedTo, None));
        Assert.Equal([liveSession], (await ListSessionsAsync(Store)).Select(s => s.Id));
        Assert.Equal(image.ManifestDigest, await Store.Repositories.ResolveTagAsync("app", "v1", None));
    }

    [Fact]
    public async Task Collection_deletes_the_repositories_it_leaves_empty_and_only_those()
    {
        var image = TestImage.Create(Bytes("layer"));
        await PutImageAsync(Store, "gone", "v1", image);
        await PutImageAsync(Store, "kept", "v1", image);
        await Store.Repositories.DeleteTagAsync("gone", "v1", None);
        await Store.Repositories.DeleteManifestRevisionAsync("gone", image.ManifestDigest, None);

        // Nothing but an old link and the mark: the mark keeps it (it says who may read what lands there next).
        await Store.Repositories.MarkAuthenticatedOnlyAsync("marked", None);
        await PushBlobAsync(Store, "marked", Bytes("an orphan"));
        _clock.Advance(TimeSpan.FromHours(3));

        var collector = await OpenAsync(forCollection: true);
        var dryRun = await new GarbageCollector(collector, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: true, None);
        Assert.Equal(["gone"], dryRun.DeletedRepositories);
        Assert.Equal(["gone", "kept", "marked"], (await Store.Repositories.ListRepositoriesAsync(null, int.MaxValue, None)).Names);

        var result = await new GarbageCollector(collector, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: false, None);
        Assert.Equal(["gone"], result.DeletedRepositories);
        Assert.False(await Store.Repositories.ExistsAsync("gone", None));
        Assert.Equal(["kept", "marked"], (await Store.Repositories.ListRepositoriesAsync(null, int.MaxValue, None)).Names);
        Assert.Equal(image.ManifestDigest, await Store.Repositories.ResolveTagAsync("kept", "v1", None));
    }

    [Fact]
    public async Task A_second_collection_while_one_runs_is_refused()
    {
        var run = (await Store.Guard.TryBeginCollectionAsync(None))!;
        var collector = await OpenAsync(forCollection: true);
        await Assert.ThrowsAsync<GarbageCollectionBusyException>(() =>
            new GarbageCollector(collector, TimeSpan.Zero, NullLogger.Instance).CollectAsync(dryRun: true, None));
        await run.DisposeAsync();
        await new GarbageCollector(collector, TimeSpan.Zero, NullLogger.Instance).CollectAsync(dryRun: true, None);
    }

    // ---- Helpers: what the registry's handlers do, through the contract only ----

    /// <summary>A pushed blob: committed and linked under a reference lease, as the upload handler does.</summary>
    private static async Task<Digest> PushBlobAsync(IRegistryStore store, string repository, byte[] content)
    {
        await using var lease = await store.Guard.EnterReferenceAsync(None);
        var digest = await store.Blobs.WriteAsync(new MemoryStream(content), null, None);
        await lease.NoteReferencedAsync(digest, None);
        await store.Repositories.LinkBlobAsync(repository, digest, None);
        return digest;
    }

    private static async Task PutImageAsync(IRegistryStore store, string repository, string tag, TestImage image)
    {
        await PushBlobAsync(store, repository, image.Config);
        await PushBlobAsync(store, repository, image.Layer);
        await using var lease = await store.Guard.EnterReferenceAsync(None);
        await lease.NoteReferencedAsync(image.ManifestDigest, None);
        await store.Blobs.WriteAsync(image.Manifest, image.ManifestDigest, None);
        await store.Repositories.PutManifestRevisionAsync(repository, image.ManifestDigest, image.MediaType, None);
        await store.Repositories.SetTagAsync(repository, tag, image.ManifestDigest, None);
    }

    private static async Task<byte[]> ReadAllAsync(IRegistryStore store, Digest digest)
    {
        var stream = await store.Blobs.OpenReadAsync(digest, None) ?? throw new Xunit.Sdk.XunitException($"{digest} is not stored");
        await using (stream)
        {
            var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer);
            return buffer.ToArray();
        }
    }

    private static async Task<List<BlobInfo>> ListBlobsAsync(IRegistryStore store) => await store.Blobs.ListAsync(None).ToListAsync();

    private static async Task<List<BlobLink>> ListLinksAsync(IRepositoryStore repositories, string repository) =>
        await repositories.ListBlobLinksAsync(repository, None).ToListAsync();

    private static async Task<List<Digest>> ListRevisionsAsync(IRepositoryStore repositories, string repository) =>
        await repositories.ListManifestRevisionsAsync(repository, None).ToListAsync();

    private static async Task<List<UploadSessionInfo>> ListSessionsAsync(IRegistryStore store) => await store.Uploads.ListAsync(None).ToListAsync();
}
