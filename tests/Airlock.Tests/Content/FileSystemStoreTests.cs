using System.Text;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

public sealed class FileSystemStoreTests : IAsyncLifetime
{
    private readonly string _data = Directory.CreateTempSubdirectory("airlock-store-").FullName;
    private RegistryStorage _storage = null!;

    public Task InitializeAsync()
    {
        _storage = RegistryStorage.Open(_data, TimeProvider.System, NullLogger.Instance);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _storage.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Blob_written_once_is_readable_by_digest_and_a_second_write_keeps_one_copy()
    {
        var content = Encoding.UTF8.GetBytes("content");
        var digest = await _storage.Blobs.WriteAsync(new MemoryStream(content), null, CancellationToken.None);
        Assert.Equal(Digest.Sha256(content), digest);
        await _storage.Blobs.WriteAsync(new MemoryStream(content), digest, CancellationToken.None);
        Assert.Equal(content.Length, await _storage.Blobs.SizeAsync(digest, CancellationToken.None));
        Assert.Equal(content, await _storage.Blobs.ReadSmallAsync(digest, 1024, CancellationToken.None));
        Assert.Single(_storage.Blobs.List());
        Assert.Empty(Directory.EnumerateFiles(_storage.Layout.IngestDirectory));
    }

    [Fact]
    public async Task Blob_with_the_wrong_digest_is_refused_and_leaves_no_file()
    {
        var wrong = Digest.Sha256(Encoding.UTF8.GetBytes("other"));
        await Assert.ThrowsAsync<Airlock.Content.DigestMismatchException>(() =>
            _storage.Blobs.WriteAsync(new MemoryStream(Encoding.UTF8.GetBytes("content")), wrong, CancellationToken.None));
        Assert.Empty(_storage.Blobs.List());
        Assert.Empty(Directory.EnumerateFiles(_storage.Layout.IngestDirectory));
    }

    [Fact]
    public void Repository_links_tags_and_referrers_round_trip()
    {
        var repositories = _storage.Repositories;
        var blob = Digest.Sha256(Encoding.UTF8.GetBytes("blob"));
        var manifest = Digest.Sha256(Encoding.UTF8.GetBytes("manifest"));
        repositories.LinkBlob("org/app", blob);
        Assert.True(repositories.HasBlobLink("org/app", blob));
        Assert.False(repositories.HasBlobLink("org/other", blob));

        repositories.PutManifestRevision("org/app", manifest, MediaTypes.OciManifest);
        repositories.SetTag("org/app", "v1", manifest);
        Assert.Equal(manifest, repositories.ResolveTag("org/app", "v1"));
        Assert.Equal(MediaTypes.OciManifest, repositories.ManifestMediaType("org/app", manifest));
        Assert.Equal(["v1"], repositories.ListTags("org/app"));
        Assert.Equal(["org/app"], repositories.ListRepositories());
        Assert.Null(repositories.ListTags("org/none"));

        var referrer = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = blob, Size = 4, ArtifactType = "application/x-test" };
        repositories.AddReferrer("org/app", manifest, referrer);
        Assert.Equal(referrer.Digest, Assert.Single(repositories.ListReferrers("org/app", manifest)).Digest);
        repositories.RemoveReferrer("org/app", manifest, blob);
        Assert.Empty(repositories.ListReferrers("org/app", manifest));

        Assert.True(repositories.DeleteTag("org/app", "v1"));
        Assert.False(repositories.DeleteTag("org/app", "v1"));
        Assert.True(repositories.UnlinkBlob("org/app", blob));
        Assert.Empty(repositories.ListBlobLinks("org/app"));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/../../b")]
    [InlineData("/absolute")]
    [InlineData("UPPER")]
    public void Path_mapper_refuses_names_that_would_leave_the_store(string repository)
    {
        Assert.Throws<ArgumentException>(() => _storage.Layout.Repository(repository));
    }

    [Fact]
    public void Path_mapper_refuses_tags_and_upload_ids_that_are_not_names()
    {
        Assert.Throws<ArgumentException>(() => _storage.Layout.Tag("app", "../../x"));
        Assert.Throws<ArgumentException>(() => _storage.Layout.UploadDirectory("../../etc"));
    }
}
