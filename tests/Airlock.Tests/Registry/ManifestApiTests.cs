using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Airlock.Oci;
using Airlock.Registry;
using Airlock.Tests.Content;

namespace Airlock.Tests.Registry;

public class ManifestApiTests
{
    /// <summary>The store under test: the filesystem store here; <see cref="ManifestApiOnS3Tests"/> runs every case on S3 + etcd.</summary>
    internal virtual TestStorage Storage => TestStorage.FileSystem;

    private Task<TestRegistry> StartAsync(Func<RegistryServerOptions, RegistryServerOptions>? configure = null, string? dataDirectory = null) =>
        TestRegistry.StartAsync(configure, dataDirectory, Storage);

    [Theory]
    [InlineData(MediaTypes.OciManifest)]
    [InlineData(MediaTypes.DockerManifest)]
    public async Task Pushed_manifest_is_served_by_tag_and_digest_with_its_media_type(string mediaType)
    {
        await using var registry = await StartAsync();
        var image = await registry.PushImageAsync("team/app", "v1", mediaType: mediaType);

        foreach (var reference in new[] { "v1", image.ManifestDigest.ToString() })
        {
            using var get = await registry.Client.GetAsync($"/v2/team/app/manifests/{reference}");
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal(mediaType, get.Content.Headers.ContentType!.MediaType);
            Assert.Equal(image.Manifest.Length, get.Content.Headers.ContentLength);
            Assert.Equal(image.ManifestDigest.ToString(), get.Headers.GetValues("Docker-Content-Digest").Single());
            Assert.Equal(image.Manifest, await get.Content.ReadAsByteArrayAsync());

            using var head = await registry.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/team/app/manifests/{reference}"));
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal(image.Manifest.Length, head.Content.Headers.ContentLength);
        }
    }

    [Fact]
    public async Task Manifest_put_answers_201_with_location_and_digest()
    {
        await using var registry = await StartAsync();
        var image = TestImage.Create(Encoding.UTF8.GetBytes("layer"));
        await registry.PushBlobOkAsync("app", image.Config);
        await registry.PushBlobOkAsync("app", image.Layer);
        using var put = await registry.PutManifestAsync("app", image.ManifestDigest.ToString(), image.Manifest);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal($"/v2/app/manifests/{image.ManifestDigest}", put.Headers.Location!.OriginalString);
        Assert.Equal(image.ManifestDigest.ToString(), put.Headers.GetValues("Docker-Content-Digest").Single());
    }

    [Fact]
    public async Task Manifest_referring_to_missing_blobs_returns_MANIFEST_BLOB_UNKNOWN()
    {
        await using var registry = await StartAsync();
        var image = TestImage.Create(Encoding.UTF8.GetBytes("never pushed layer"));
        await registry.PushBlobOkAsync("app", image.Config);
        using var response = await registry.PutManifestAsync("app", "v1", image.Manifest);
        await TestRegistry.AssertError(response, HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");

        // A blob in another repository does not count: repositories read only what is linked to them.
        await registry.PushBlobOkAsync("other", image.Layer);
        using var again = await registry.PutManifestAsync("app", "v1", image.Manifest);
        await TestRegistry.AssertError(again, HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
        using var get = await registry.Client.GetAsync("/v2/app/manifests/v1");
        await TestRegistry.AssertError(get, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("{\"schemaVersion\":1,\"name\":\"x\"}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\"}")]
    public async Task Malformed_manifest_returns_MANIFEST_INVALID(string body)
    {
        await using var registry = await StartAsync();
        using var response = await registry.PutManifestAsync("app", "v1", Encoding.UTF8.GetBytes(body));
        await TestRegistry.AssertError(response, HttpStatusCode.BadRequest, "MANIFEST_INVALID");
        Assert.Equal(0, await registry.CountStoredBlobsAsync());
    }

    [Fact]
    public async Task Manifest_over_the_size_limit_returns_413()
    {
        await using var registry = await StartAsync(o => o with { MaxManifestBytes = 1024 });
        var image = TestImage.Create(Encoding.UTF8.GetBytes("layer"));
        await registry.PushBlobOkAsync("app", image.Config);
        await registry.PushBlobOkAsync("app", image.Layer);
        var padded = Encoding.UTF8.GetString(image.Manifest).TrimEnd('}') + ",\"annotations\":{\"pad\":\"" + new string('x', 2000) + "\"}}";
        using var response = await registry.PutManifestAsync("app", "v1", Encoding.UTF8.GetBytes(padded));
        await TestRegistry.AssertError(response, HttpStatusCode.RequestEntityTooLarge, "SIZE_INVALID");

        using var small = await registry.PutManifestAsync("app", "v1", image.Manifest);
        Assert.Equal(HttpStatusCode.Created, small.StatusCode);
    }

    [Fact]
    public async Task Digest_in_the_url_must_match_the_body()
    {
        await using var registry = await StartAsync();
        var image = TestImage.Create(Encoding.UTF8.GetBytes("layer"));
        await registry.PushBlobOkAsync("app", image.Config);
        await registry.PushBlobOkAsync("app", image.Layer);
        var other = Digest.Sha256(Encoding.UTF8.GetBytes("other"));
        using var response = await registry.PutManifestAsync("app", other.ToString(), image.Manifest);
        await TestRegistry.AssertError(response, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Theory]
    [InlineData(MediaTypes.OciIndex, MediaTypes.OciManifest)]
    [InlineData(MediaTypes.DockerManifestList, MediaTypes.DockerManifest)]
    public async Task Index_needs_its_child_manifests_in_the_repository(string indexType, string childType)
    {
        await using var registry = await StartAsync();
        var missing = TestImage.Create(Encoding.UTF8.GetBytes("missing child"), childType);
        var missingIndex = TestImage.BuildIndex(indexType, (childType, missing.Manifest));
        using var refused = await registry.PutManifestAsync("app", "multi", missingIndex, indexType);
        await TestRegistry.AssertError(refused, HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");

        var child = await registry.PushImageAsync("app", "amd64", mediaType: childType);
        var index = TestImage.BuildIndex(indexType, (childType, child.Manifest));
        using var accepted = await registry.PutManifestAsync("app", "multi", index, indexType);
        Assert.Equal(HttpStatusCode.Created, accepted.StatusCode);
        using var get = await registry.Client.GetAsync("/v2/app/manifests/multi");
        Assert.Equal(indexType, get.Content.Headers.ContentType!.MediaType);
        Assert.Equal(index, await get.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Retagging_serves_the_new_manifest_at_once()
    {
        await using var registry = await StartAsync();
        var first = await registry.PushImageAsync("app", "latest", Encoding.UTF8.GetBytes("one"));
        using (var warm = await registry.Client.GetAsync("/v2/app/manifests/latest"))
        {
            Assert.Equal(first.ManifestDigest.ToString(), warm.Headers.GetValues("Docker-Content-Digest").Single());
        }

        var second = await registry.PushImageAsync("app", "latest", Encoding.UTF8.GetBytes("two"));
        using var get = await registry.Client.GetAsync("/v2/app/manifests/latest");
        Assert.Equal(second.ManifestDigest.ToString(), get.Headers.GetValues("Docker-Content-Digest").Single());
    }

    [Fact]
    public async Task Deleting_by_tag_removes_only_the_tag_and_by_digest_the_manifest_and_its_tags()
    {
        await using var registry = await StartAsync();
        var image = await registry.PushImageAsync("app", "v1");
        using (var tagAgain = await registry.PutManifestAsync("app", "v2", image.Manifest))
        {
            Assert.Equal(HttpStatusCode.Created, tagAgain.StatusCode);
        }

        (await registry.Client.GetAsync("/v2/app/manifests/v1")).Dispose();
        using var deleteTag = await registry.Client.DeleteAsync("/v2/app/manifests/v1");
        Assert.Equal(HttpStatusCode.Accepted, deleteTag.StatusCode);
        using var goneTag = await registry.Client.GetAsync("/v2/app/manifests/v1");
        await TestRegistry.AssertError(goneTag, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        using var byDigest = await registry.Client.GetAsync($"/v2/app/manifests/{image.ManifestDigest}");
        Assert.Equal(HttpStatusCode.OK, byDigest.StatusCode);

        (await registry.Client.GetAsync("/v2/app/manifests/v2")).Dispose();
        using var deleteDigest = await registry.Client.DeleteAsync($"/v2/app/manifests/{image.ManifestDigest}");
        Assert.Equal(HttpStatusCode.Accepted, deleteDigest.StatusCode);
        using var goneDigest = await registry.Client.GetAsync($"/v2/app/manifests/{image.ManifestDigest}");
        await TestRegistry.AssertError(goneDigest, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        using var goneV2 = await registry.Client.GetAsync("/v2/app/manifests/v2");
        await TestRegistry.AssertError(goneV2, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        using var again = await registry.Client.DeleteAsync($"/v2/app/manifests/{image.ManifestDigest}");
        await TestRegistry.AssertError(again, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task Accept_list_without_the_stored_type_or_a_wildcard_gets_MANIFEST_UNKNOWN()
    {
        await using var registry = await StartAsync();
        await registry.PushImageAsync("app", "v1");

        var dockerOnly = new HttpRequestMessage(HttpMethod.Get, "/v2/app/manifests/v1");
        dockerOnly.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.DockerManifest));
        using var refused = await registry.Client.SendAsync(dockerOnly);
        await TestRegistry.AssertError(refused, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");

        var withOci = new HttpRequestMessage(HttpMethod.Get, "/v2/app/manifests/v1");
        withOci.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.DockerManifest));
        withOci.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        using var served = await registry.Client.SendAsync(withOci);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);

        var wildcard = new HttpRequestMessage(HttpMethod.Get, "/v2/app/manifests/v1");
        wildcard.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("*/*"));
        using var any = await registry.Client.SendAsync(wildcard);
        Assert.Equal(HttpStatusCode.OK, any.StatusCode);
    }

    [Fact]
    public async Task Referrers_list_manifests_with_a_subject_and_filter_by_artifact_type()
    {
        await using var registry = await StartAsync();
        var subject = await registry.PushImageAsync("app", "v1");
        var subjectDescriptor = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = subject.ManifestDigest, Size = subject.Manifest.Length };

        using (var empty = await registry.Client.GetAsync($"/v2/app/referrers/{subject.ManifestDigest}"))
        {
            Assert.Equal(HttpStatusCode.OK, empty.StatusCode);
            Assert.Equal(MediaTypes.OciIndex, empty.Content.Headers.ContentType!.MediaType);
            Assert.Empty(Manifests(await empty.Content.ReadAsStringAsync()));
        }

        var config = MediaTypes.EmptyJson.ToArray();
        await registry.PushBlobOkAsync("app", config);
        var signatureBlob = Encoding.UTF8.GetBytes("signature");
        await registry.PushBlobOkAsync("app", signatureBlob);
        var signature = TestImage.BuildManifest(MediaTypes.OciManifest, MediaTypes.OciEmpty, config, "application/vnd.example.sig", signatureBlob, artifactType: "application/vnd.example.signature", subject: subjectDescriptor);
        var sbom = TestImage.BuildManifest(MediaTypes.OciManifest, "application/vnd.example.sbom.config", config, "application/spdx+json", signatureBlob, subject: subjectDescriptor);
        foreach (var referrer in new[] { signature, sbom })
        {
            using var put = await registry.PutManifestAsync("app", Digest.Sha256(referrer).ToString(), referrer);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            Assert.Equal(subject.ManifestDigest.ToString(), put.Headers.GetValues("OCI-Subject").Single());
        }

        using var all = await registry.Client.GetAsync($"/v2/app/referrers/{subject.ManifestDigest}");
        var listed = Manifests(await all.Content.ReadAsStringAsync());
        Assert.Equal(2, listed.Count);
        Assert.Contains(listed, r => r.Digest == Digest.Sha256(signature).ToString() && r.ArtifactType == "application/vnd.example.signature");
        Assert.Contains(listed, r => r.Digest == Digest.Sha256(sbom).ToString() && r.ArtifactType == "application/vnd.example.sbom.config");
        Assert.False(all.Headers.Contains("OCI-Filters-Applied"));

        using var filtered = await registry.Client.GetAsync($"/v2/app/referrers/{subject.ManifestDigest}?artifactType=application/vnd.example.signature");
        Assert.Equal("artifactType", filtered.Headers.GetValues("OCI-Filters-Applied").Single());
        Assert.Equal(Digest.Sha256(signature).ToString(), Assert.Single(Manifests(await filtered.Content.ReadAsStringAsync())).Digest);

        using var delete = await registry.Client.DeleteAsync($"/v2/app/manifests/{Digest.Sha256(signature)}");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        using var after = await registry.Client.GetAsync($"/v2/app/referrers/{subject.ManifestDigest}");
        Assert.Equal(Digest.Sha256(sbom).ToString(), Assert.Single(Manifests(await after.Content.ReadAsStringAsync())).Digest);
    }

    // These got 500 after the manifest had been written: an orphan revision, and a referrers path that cannot exist.
    [Theory]
    [InlineData("subject", "blake3:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("subject", "sha256x:0")]
    [InlineData("subject", "long")]
    [InlineData("layer", "blake3:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("layer", "long")]
    [InlineData("index", "blake3:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    [InlineData("index", "long")]
    public async Task A_descriptor_digest_the_registry_cannot_hold_is_DIGEST_INVALID_before_anything_is_written(string where, string digestText)
    {
        await using var registry = await StartAsync();
        var subject = await registry.PushImageAsync("app", "v1");
        var bad = Digest.Parse(digestText == "long" ? "foo:" + new string('a', 5000) : digestText);
        var config = MediaTypes.EmptyJson.ToArray();
        await registry.PushBlobOkAsync("app", config);
        var layer = Encoding.UTF8.GetBytes("signature");
        await registry.PushBlobOkAsync("app", layer);
        var badDescriptor = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = bad, Size = 2 };
        var manifest = where switch
        {
            "subject" => TestImage.BuildManifest(MediaTypes.OciManifest, MediaTypes.OciEmpty, config, "application/vnd.example.sig", layer, artifactType: "application/vnd.example.signature", subject: badDescriptor),
            "layer" => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(TestImage.BuildManifest(MediaTypes.OciManifest, MediaTypes.OciEmpty, config, "application/vnd.example.sig", layer))
                .Replace(Digest.Sha256(layer).ToString(), bad.ToString(), StringComparison.Ordinal)),
            _ => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(TestImage.BuildIndex(MediaTypes.OciIndex, (MediaTypes.OciManifest, subject.Manifest)))
                .Replace(subject.ManifestDigest.ToString(), bad.ToString(), StringComparison.Ordinal)),
        };
        var mediaType = where == "index" ? MediaTypes.OciIndex : MediaTypes.OciManifest;
        var blobs = await registry.CountStoredBlobsAsync();
        var records = await registry.Storage.RepositoryRecordsAsync(registry);

        foreach (var reference in new[] { "bad", Digest.Sha256(manifest).ToString() })
        {
            using var put = await registry.PutManifestAsync("app", reference, manifest, mediaType);
            await TestRegistry.AssertError(put, HttpStatusCode.BadRequest, "DIGEST_INVALID");
            var (_, detail) = await TestRegistry.ErrorOf(put);
            Assert.Contains(bad.Algorithm, detail, StringComparison.Ordinal);
        }

        Assert.Equal(blobs, await registry.CountStoredBlobsAsync());
        Assert.Equal(records, await registry.Storage.RepositoryRecordsAsync(registry));
        using var tags = await registry.Client.GetAsync("/v2/app/tags/list");
        Assert.DoesNotContain("bad", await tags.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static List<(string Digest, string? ArtifactType)> Manifests(string index)
    {
        using var json = JsonDocument.Parse(index);
        return json.RootElement.GetProperty("manifests").EnumerateArray()
            .Select(m => (m.GetProperty("digest").GetString()!, m.TryGetProperty("artifactType", out var type) ? type.GetString() : null))
            .ToList();
    }
}

/// <summary>Every case of <see cref="ManifestApiTests"/> against blobs in S3 and metadata in etcd (the run's radosgw and etcd).</summary>
[Collection(CephEtcdCollection.Name)]
public sealed class ManifestApiOnS3Tests(CephEtcd engines) : ManifestApiTests
{
    internal override TestStorage Storage { get; } = TestStorage.S3(engines);
}

/// <summary>Every case of <see cref="ManifestApiTests"/> against blobs in S3 and metadata in the data directory (a single replica, no etcd).</summary>
[Collection(CephEtcdCollection.Name)]
public sealed class ManifestApiOnS3LocalTests(CephEtcd engines) : ManifestApiTests
{
    internal override TestStorage Storage { get; } = TestStorage.S3Local(engines);
}
