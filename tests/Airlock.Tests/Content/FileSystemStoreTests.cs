using System.Text;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>The filesystem store passes the store contract; its own tests (paths, the on-disk format) follow.</summary>
public sealed class FileSystemStoreTests : RegistryStoreContract
{
    private readonly string _data = Directory.CreateTempSubdirectory("airlock-store-").FullName;

    private StoreLayout Layout => new(_data);

    protected override Task<IRegistryStore> OpenStoreAsync(TimeProvider time, bool forCollection) =>
        Task.FromResult<IRegistryStore>(forCollection
            ? FileSystemRegistryStore.OpenForCollection(_data, time, NullLogger.Instance)
            : FileSystemRegistryStore.Open(_data, time, NullLogger.Instance));

    protected override Task<int> CountIngestLeftoversAsync() =>
        Task.FromResult(Directory.Exists(Layout.IngestDirectory) ? Directory.EnumerateFiles(Layout.IngestDirectory).Count() : 0);

    protected override Task DeleteStorageAsync()
    {
        Directory.Delete(_data, recursive: true);
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/../../b")]
    [InlineData("/absolute")]
    [InlineData("UPPER")]
    public void Path_mapper_refuses_names_that_would_leave_the_store(string repository)
    {
        Assert.Throws<ArgumentException>(() => Layout.Repository(repository));
    }

    [Fact]
    public void Path_mapper_refuses_tags_and_upload_ids_that_are_not_names()
    {
        Assert.Throws<ArgumentException>(() => Layout.Tag("app", "../../x"));
        Assert.Throws<ArgumentException>(() => Layout.UploadDirectory("../../etc"));
    }

    /// <summary>
    /// A data directory written by an earlier release, laid out here by hand (not through <see cref="StoreLayout"/>),
    /// is read as it is: the format on disk is the compatibility promise, no migration runs.
    /// </summary>
    [Fact]
    public async Task A_data_directory_of_an_earlier_release_is_served_as_it_is()
    {
        var root = Path.Combine(_data, "registry");
        var blob = Encoding.UTF8.GetBytes("a layer stored by an earlier release");
        var digest = Digest.Sha256(blob);
        var hex = digest.Encoded;
        var manifest = Digest.Sha256(Encoding.UTF8.GetBytes("a manifest"));
        var upload = Guid.NewGuid().ToString("D");
        Write(root, $"blobs/sha256/{hex[..2]}/{hex}", blob);
        Write(root, $"repositories/team/app/_layers/sha256/{hex}", []);
        Write(root, $"repositories/team/app/_manifests/revisions/sha256/{manifest.Encoded}", Encoding.UTF8.GetBytes(MediaTypes.OciManifest));
        Write(root, $"repositories/team/app/_manifests/tags/v1", Encoding.UTF8.GetBytes(manifest + "\n"));
        Write(root, $"repositories/team/app/_referrers/sha256/{manifest.Encoded}/sha256-{hex}",
            Encoding.UTF8.GetBytes($"{{\"mediaType\":\"{MediaTypes.OciManifest}\",\"digest\":\"{digest}\",\"size\":{blob.Length}}}"));
        Write(root, "repositories/cache/private/_authenticated_only", []);
        Write(root, "repositories/cache/private/_layers/sha256/" + hex, []);
        Write(root, $"uploads/{upload}/state.json", Encoding.UTF8.GetBytes("{\"repository\":\"team/app\",\"startedAt\":\"2025-01-02T03:04:05+00:00\"}"));
        Write(root, $"uploads/{upload}/data", Encoding.UTF8.GetBytes("half a "));
        Write(root, $"uploads/{upload}/lock", []);

        // An earlier release kept no index (the one this test's fixture built for the empty directory goes too).
        File.Delete(Layout.IndexSnapshot);
        File.Delete(Layout.IndexJournal);

        await using var store = FileSystemRegistryStore.Open(_data, TimeProvider.System, NullLogger.Instance);
        Assert.Equal(blob.Length, await store.Blobs.SizeAsync(digest, CancellationToken.None));
        Assert.NotNull(await store.Repositories.GetBlobLinkAsync("team/app", digest, CancellationToken.None));
        Assert.Equal(MediaTypes.OciManifest, await store.Repositories.ManifestMediaTypeAsync("team/app", manifest, CancellationToken.None));
        Assert.Equal(manifest, await store.Repositories.ResolveTagAsync("team/app", "v1", CancellationToken.None));
        Assert.Equal(["cache/private", "team/app"], (await store.Repositories.ListRepositoriesAsync(null, 10, CancellationToken.None)).Names);
        Assert.Equal(digest, Assert.Single(await store.Repositories.ListReferrersAsync("team/app", manifest, CancellationToken.None)).Digest);
        Assert.Equal(["cache/private"], await store.Repositories.ListAuthenticatedOnlyAsync(CancellationToken.None));

        await using (var session = (await store.Uploads.OpenAsync(upload, CancellationToken.None))!)
        {
            Assert.Equal("team/app", session.Repository);
            await session.AppendAsync(new MemoryStream(Encoding.UTF8.GetBytes("blob")), CancellationToken.None);
            await session.CommitAsync(Digest.Sha256(Encoding.UTF8.GetBytes("half a blob")), CancellationToken.None);
        }

        Assert.True(File.Exists(Path.Combine(root, "blobs/sha256", Digest.Sha256(Encoding.UTF8.GetBytes("half a blob")).Encoded[..2], Digest.Sha256(Encoding.UTF8.GetBytes("half a blob")).Encoded)));
    }

    private static void Write(string root, string relative, byte[] content)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }
}
