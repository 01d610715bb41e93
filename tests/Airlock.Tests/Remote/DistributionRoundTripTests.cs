using System.Net;
using Airlock.Content;
using Airlock.Oci;
using Airlock.Remote;

namespace Airlock.Tests.Remote;

/// <summary>The client against the reference registry (distribution 2.8): what is pushed comes back byte for byte.</summary>
public sealed class DistributionRoundTripTests : IAsyncLifetime
{
    private DistributionRegistry _registry = null!;
    private readonly ByteCountingHandler.Counter _counter = new();
    private RegistryClient _client = null!;

    public async Task InitializeAsync()
    {
        _registry = await DistributionRegistry.StartAsync();
        _client = new RegistryClient(new RemoteOptions { WrapHandler = inner => new ByteCountingHandler(inner, _counter) });
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _registry.DisposeAsync();
    }

    private ImageReference Repo(string repository, string? tag = null) => ImageReference.Parse($"{_registry.Host}/{repository}" + (tag is null ? "" : ":" + tag));

    private async Task PushImageAsync(ImageReference repo, TestImage image, string? tag)
    {
        foreach (var (descriptor, content) in image.Blobs)
        {
            await _client.PushBlobAsync(repo, descriptor, new MemoryStream(content), null, default);
        }

        await _client.PushManifestAsync(repo, image.Manifest.MediaType, image.ManifestBytes, tag, default);
    }

    [Fact]
    public async Task Pushed_blobs_manifest_and_index_resolve_and_pull_back_with_identical_digests()
    {
        var repo = Repo("team/app");
        var amd64 = TestImage.Create();
        var arm64 = TestImage.Create(platformOs: "linux");
        foreach (var image in new[] { amd64, arm64 })
        {
            foreach (var (descriptor, content) in image.Blobs)
            {
                Assert.False(await _client.BlobExistsAsync(repo, descriptor.Digest, default));
                var result = await _client.PushBlobAsync(repo, descriptor, new MemoryStream(content), mountFrom: null, default);
                Assert.Equal(BlobPushResult.Uploaded, result);
                Assert.True(await _client.BlobExistsAsync(repo, descriptor.Digest, default));
            }

            Assert.Equal(image.Manifest.Digest, await _client.PushManifestAsync(repo, image.Manifest.MediaType, image.ManifestBytes, null, default));
        }

        var index = TestImage.Index([amd64.Manifest, arm64.Manifest]);
        await _client.PushManifestAsync(repo, index.Descriptor.MediaType, index.Content, "v1", default);

        var resolved = await _client.ResolveAsync(repo, "v1", default);
        Assert.Equal(index.Descriptor.Digest, resolved.Digest);
        Assert.Equal(index.Descriptor.Size, resolved.Size);
        Assert.Equal(MediaTypes.OciIndex, resolved.MediaType);

        var (indexDescriptor, indexBytes) = await _client.GetManifestAsync(repo, resolved.Digest.ToString(), default);
        Assert.Equal(index.Content, indexBytes.ToArray());
        Assert.Equal(index.Descriptor.Digest, indexDescriptor.Digest);

        var (manifestDescriptor, manifestBytes) = await _client.GetManifestAsync(repo, amd64.Manifest.Digest.ToString(), default);
        Assert.Equal(amd64.ManifestBytes, manifestBytes.ToArray());
        Assert.Equal(MediaTypes.OciManifest, manifestDescriptor.MediaType);

        foreach (var (descriptor, content) in amd64.Blobs)
        {
            await using var stream = await _client.OpenBlobAsync(repo, descriptor, default);
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(content, copy.ToArray());
        }
    }

    [Fact]
    public async Task RemoteImageStore_copies_an_image_between_repositories_by_mounting_every_blob()
    {
        var image = TestImage.Create(layers: 3, layerSize: 256 * 1024);
        await using (var push = RemoteImageStore.Create(Repo("source/app", "1.0"), _client))
        {
            foreach (var (descriptor, content) in image.Blobs)
            {
                await push.WriteBlobAsync(descriptor, new MemoryStream(content), default);
            }

            await push.WriteManifestAsync(image.Manifest, image.ManifestBytes, "1.0", default);
        }

        await using var source = RemoteImageStore.Create(Repo("source/app", "1.0"), _client);
        await using var target = RemoteImageStore.Create(Repo("copy/app", "1.0"), _client);
        var root = await source.ResolveAsync("", default);
        Assert.Equal(image.Manifest.Digest, root.Digest);
        var manifestBytes = await source.ReadManifestAsync(root, default);
        var manifest = ManifestDocument.Parse(manifestBytes.Span, root.MediaType);

        var sentBefore = _counter.RequestBytes;
        var results = new List<BlobPushResult>();
        foreach (var child in manifest.Children)
        {
            Assert.False(await target.HasBlobAsync(child, default));
            await using var content = await source.OpenBlobAsync(child, default);
            results.Add(await target.PushBlobAsync(child, content, default));
        }

        Assert.All(results, r => Assert.Equal(BlobPushResult.Mounted, r));
        Assert.True(_counter.RequestBytes - sentBefore < 1024, $"{_counter.RequestBytes - sentBefore} bytes were sent for mounted blobs");
        await target.WriteManifestAsync(root, manifestBytes, "1.0", default);

        Assert.True(await target.HasManifestAsync(root, default));
        Assert.Equal(root, await target.ResolveAsync("1.0", default));
        foreach (var child in manifest.Children)
        {
            Assert.True(await target.HasBlobAsync(child, default));
        }
    }

    [Fact]
    public async Task RemoteImageStore_accepts_tags_digests_and_full_references_of_its_own_repository_only()
    {
        var image = TestImage.Create(layers: 1, layerSize: 100);
        await using var store = RemoteImageStore.Create(Repo("refs/app", "2.0"), _client);
        foreach (var (descriptor, content) in image.Blobs)
        {
            await store.WriteBlobAsync(descriptor, new MemoryStream(content), default);
        }

        await store.WriteManifestAsync(image.Manifest, image.ManifestBytes, $"{_registry.Host}/refs/app:2.0", default);
        await store.WriteManifestAsync(image.Manifest, image.ManifestBytes, "extra", default);
        await store.WriteManifestAsync(image.Manifest, image.ManifestBytes, image.Manifest.Digest.ToString(), default);

        Assert.Equal(image.Manifest.Digest, (await store.ResolveAsync("", default)).Digest);
        Assert.Equal(image.Manifest.Digest, (await store.ResolveAsync("extra", default)).Digest);
        Assert.Equal(image.Manifest.Digest, (await store.ResolveAsync(image.Manifest.Digest.ToString(), default)).Digest);
        Assert.Equal(image.Manifest.Digest, (await store.ResolveAsync($"{_registry.Host}/refs/app:2.0", default)).Digest);
        Assert.Equal(["2.0", "extra"], (await store.ListTagsAsync(default)).Order(StringComparer.Ordinal));
        await Assert.ThrowsAsync<ArgumentException>(async () => await store.ResolveAsync($"{_registry.Host}/other/app:2.0", default));

        var lie = image.Manifest with { Digest = Digest.Sha256("not it"u8) };
        await Assert.ThrowsAsync<DigestMismatchException>(async () => await store.WriteManifestAsync(lie, image.ManifestBytes, null, default));
    }

    [Fact]
    public async Task A_mount_from_a_repository_without_the_blob_falls_back_to_an_upload()
    {
        var image = TestImage.Create(layers: 1);
        var (descriptor, content) = image.Blobs[1];
        var sentBefore = _counter.RequestBytes;
        var result = await _client.PushBlobAsync(Repo("target/app"), descriptor, new MemoryStream(content), mountFrom: "nowhere/app", default);
        Assert.Equal(BlobPushResult.Uploaded, result);
        Assert.True(_counter.RequestBytes - sentBefore >= content.Length);
        Assert.True(await _client.BlobExistsAsync(Repo("target/app"), descriptor.Digest, default));
    }

    [Fact]
    public async Task An_unknown_tag_fails_with_MANIFEST_UNKNOWN_naming_registry_repository_and_tag()
    {
        var ex = await Assert.ThrowsAsync<RegistryException>(() => _client.GetManifestAsync(Repo("team/missing"), "nope", default));
        Assert.Equal(HttpStatusCode.NotFound, ex.StatusCode);
        Assert.Contains(ex.Code, new[] { "MANIFEST_UNKNOWN", "NAME_UNKNOWN" });
        Assert.Contains(_registry.Host, ex.Message, StringComparison.Ordinal);
        Assert.Contains("team/missing", ex.Message, StringComparison.Ordinal);
        Assert.Contains("nope", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_blob_pushed_with_a_wrong_digest_is_refused_and_not_stored()
    {
        var content = new byte[1000];
        Random.Shared.NextBytes(content);
        var lie = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256("other"u8), Size = content.Length };
        var ex = await Assert.ThrowsAsync<RegistryException>(() => _client.PushBlobAsync(Repo("team/app"), lie, new MemoryStream(content), null, default));
        Assert.Equal("DIGEST_INVALID", ex.Code);
        Assert.False(await _client.BlobExistsAsync(Repo("team/app"), lie.Digest, default));
        Assert.False(await _client.BlobExistsAsync(Repo("team/app"), Digest.Sha256(content), default));
    }

    [Fact]
    public async Task A_blob_of_unknown_length_is_pushed_with_a_chunked_patch()
    {
        var content = new byte[300 * 1024];
        Random.Shared.NextBytes(content);
        var unknownSize = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256(content), Size = -1 };
        Assert.Equal(BlobPushResult.Uploaded, await _client.PushBlobAsync(Repo("team/chunked"), unknownSize, new MemoryStream(content), null, default));
        Assert.Contains("PATCH", _counter.Methods);
        var stored = unknownSize with { Size = content.Length };
        await using var stream = await _client.OpenBlobAsync(Repo("team/chunked"), stored, default);
        var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(content, copy.ToArray());
    }

    [Fact]
    public async Task Tags_are_listed_across_pages_and_the_catalog_lists_repositories()
    {
        var repo = Repo("paged/app");
        var image = TestImage.Create(layers: 1, layerSize: 100);
        await PushImageAsync(repo, image, null);
        var tags = Enumerable.Range(1, 5).Select(i => $"v{i}").ToList();
        foreach (var tag in tags)
        {
            await _client.PushManifestAsync(repo, image.Manifest.MediaType, image.ManifestBytes, tag, default);
        }

        // distribution 2.8 ignores n for tags (the paging of tags is tested against a scripted server).
        Assert.Equal(tags, (await _client.ListTagsAsync(repo, default, pageSize: 2)).Order(StringComparer.Ordinal));

        await PushImageAsync(Repo("paged/other"), image, "x");
        await PushImageAsync(Repo("paged/third"), image, "x");
        var requestsBefore = _counter.Requests;
        var catalog = await _client.CatalogAsync(_registry.Host, default, pageSize: 1);
        Assert.Equal(["paged/app", "paged/other", "paged/third"], catalog.Where(r => r.StartsWith("paged/", StringComparison.Ordinal)));
        Assert.True(_counter.Requests - requestsBefore >= 3, "a catalog in pages of 1 needs a request per repository");
    }

    [Fact]
    public async Task Referrers_fall_back_to_the_tag_schema_when_the_registry_has_no_referrers_API()
    {
        var repo = Repo("team/signed");
        var image = TestImage.Create(layers: 1, layerSize: 100);
        await PushImageAsync(repo, image, "1.0");
        Assert.Empty(await _client.ReferrersAsync(repo, image.Manifest.Digest, null, default));

        var signature = TestImage.Create(layers: 1, layerSize: 50, subject: image.Manifest, artifactType: "application/vnd.example.sig");
        var sbom = TestImage.Create(layers: 1, layerSize: 50, subject: image.Manifest, artifactType: "application/vnd.example.sbom");
        await PushImageAsync(repo, signature, null);
        await PushImageAsync(repo, sbom, null);

        // distribution 2.8 has no referrers API: pushers maintain the sha256-<hex> tag index instead.
        var referrersIndex = TestImage.Index([signature.Manifest, sbom.Manifest]);
        await _client.PushManifestAsync(repo, MediaTypes.OciIndex, referrersIndex.Content, "sha256-" + image.Manifest.Digest.Encoded, default);

        var all = await _client.ReferrersAsync(repo, image.Manifest.Digest, null, default);
        Assert.Equal([signature.Manifest.Digest, sbom.Manifest.Digest], all.Select(d => d.Digest));
        var signatures = await _client.ReferrersAsync(repo, image.Manifest.Digest, "application/vnd.example.sig", default);
        Assert.Equal(signature.Manifest.Digest, Assert.Single(signatures).Digest);
    }
}
