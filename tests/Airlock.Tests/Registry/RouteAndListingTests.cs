using System.Net;
using System.Text.Json;
using Airlock.Distribution;
using Airlock.Registry;
using Airlock.Tests.Content;

namespace Airlock.Tests.Registry;

public class RouteAndListingTests
{
    /// <summary>The store under test: the filesystem store here; <see cref="RouteAndListingOnS3Tests"/> runs every case on S3 + etcd.</summary>
    internal virtual TestStorage Storage => TestStorage.FileSystem;

    private Task<TestRegistry> StartAsync(Func<RegistryServerOptions, RegistryServerOptions>? configure = null, string? dataDirectory = null) =>
        TestRegistry.StartAsync(configure, dataDirectory, Storage);

    [Theory]
    [InlineData("/v2/a/../b/manifests/v1")]
    [InlineData("/v2/a/%2e%2e/b/manifests/v1")]
    [InlineData("/v2/a%2fb/manifests/v1")]
    [InlineData("/v2/a/./b/manifests/v1")]
    [InlineData("/v2/Upper/manifests/v1")]
    [InlineData("/v2/a//b/manifests/v1")]
    [InlineData("/v2/-a/manifests/v1")]
    public async Task Path_tricks_and_invalid_names_are_refused_with_NAME_INVALID(string target)
    {
        await using var registry = await StartAsync();
        await registry.PushImageAsync("b", "v1");
        var (status, body) = await registry.SendRawAsync("GET", target);
        Assert.Equal(400, status);
        Assert.Contains("NAME_INVALID", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/v2/zz/%2e%2e/ok/repo/tags/list")]
    [InlineData("/v2/zz/../ok/repo/tags/list")]
    [InlineData("/v2/ok%2frepo/tags/list")]
    public async Task A_request_in_absolute_form_gets_the_same_path_checks(string path)
    {
        await using var registry = await StartAsync();
        await registry.PushImageAsync("ok/repo", "v1");

        var (status, body) = await registry.SendRawAsync("GET", $"http://{registry.Server.Address.Authority}{path}");
        Assert.Equal(400, status);
        Assert.Contains("NAME_INVALID", body, StringComparison.Ordinal);

        // The same form with a clean path is served as usual.
        (status, body) = await registry.SendRawAsync("GET", $"http://{registry.Server.Address.Authority}/v2/ok/repo/tags/list?n=5");
        Assert.Equal(200, status);
        Assert.Contains("\"v1\"", body, StringComparison.Ordinal);
    }

    // "$" in .NET also matches before a final "\n": these were stored under a name or tag ending in a newline.
    [Theory]
    [InlineData("demo/app", "latest%0a", "MANIFEST_INVALID")]
    [InlineData("demo/app", "latest%0A", "MANIFEST_INVALID")]
    [InlineData("demo/app%0a", "latest", "NAME_INVALID")]
    public async Task A_manifest_put_whose_name_or_tag_ends_in_a_newline_is_refused_and_stores_nothing(string name, string tag, string code)
    {
        await using var registry = await StartAsync();
        var image = TestImage.Create("layer"u8.ToArray());
        await registry.PushBlobOkAsync("demo/app", image.Config);
        await registry.PushBlobOkAsync("demo/app", image.Layer);
        var before = await registry.Storage.RepositoryRecordsAsync(registry);

        using (var put = await registry.PutManifestAsync(name, tag, image.Manifest))
        {
            await TestRegistry.AssertError(put, HttpStatusCode.BadRequest, code);
        }

        Assert.Equal(2, await registry.CountStoredBlobsAsync());
        Assert.Equal(before, await registry.Storage.RepositoryRecordsAsync(registry));
        Assert.Equal(["demo/app"], await CatalogAsync(registry));
    }

    [Theory]
    [InlineData("demo/app%0a")]
    [InlineData("demo/app%0A")]
    public async Task A_blob_push_or_mount_into_a_name_ending_in_a_newline_is_refused_and_stores_nothing(string name)
    {
        await using var registry = await StartAsync();
        var content = "a blob"u8.ToArray();
        using (var push = await registry.PushBlobAsync(name, content))
        {
            await TestRegistry.AssertError(push, HttpStatusCode.BadRequest, "NAME_INVALID");
        }

        Assert.Equal(0, await registry.CountStoredBlobsAsync());
        await registry.PushBlobOkAsync("demo/app", content);
        using (var mount = await registry.Client.PostAsync($"/v2/{name}/blobs/uploads/?mount={TestRegistry.DigestOf(content)}&from=demo/app", null))
        {
            await TestRegistry.AssertError(mount, HttpStatusCode.BadRequest, "NAME_INVALID");
        }

        using (var session = await registry.Client.PostAsync($"/v2/{name}/blobs/uploads/", null))
        {
            await TestRegistry.AssertError(session, HttpStatusCode.BadRequest, "NAME_INVALID");
        }

        Assert.Equal(["demo/app"], await CatalogAsync(registry));
        Assert.Equal(0, await registry.CountUploadLeftoversAsync());
    }

    private static async Task<string[]> CatalogAsync(TestRegistry registry)
    {
        using var json = JsonDocument.Parse(await registry.Client.GetStringAsync("/v2/_catalog"));
        return json.RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()!).ToArray();
    }

    [Fact]
    public async Task A_tag_that_cannot_exist_is_unknown_when_read_and_invalid_when_pushed()
    {
        await using var registry = await StartAsync();
        var image = await registry.PushImageAsync("app", "v1");
        foreach (var read in new[] { HttpMethod.Get, HttpMethod.Head, HttpMethod.Delete })
        {
            using var response = await registry.Client.SendAsync(new HttpRequestMessage(read, "/v2/app/manifests/-bad"));
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        using var put = await registry.PutManifestAsync("app", "-bad", image.Manifest);
        await TestRegistry.AssertError(put, HttpStatusCode.BadRequest, "MANIFEST_INVALID");
    }

    [Theory]
    [InlineData("/v2/app/manifests/sha256:123", "DIGEST_INVALID")]
    [InlineData("/v2/app/blobs/latest", "DIGEST_INVALID")]
    public async Task Invalid_tags_and_digests_are_refused(string path, string code)
    {
        await using var registry = await StartAsync();
        using var response = await registry.Client.GetAsync(path);
        await TestRegistry.AssertError(response, HttpStatusCode.BadRequest, code);
    }

    [Fact]
    public async Task Tags_list_paginates_with_n_last_and_a_Link_header()
    {
        await using var registry = await StartAsync();
        var image = await registry.PushImageAsync("app", "a");
        foreach (var tag in new[] { "b", "c", "d" })
        {
            using var put = await registry.PutManifestAsync("app", tag, image.Manifest);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        using var all = await registry.Client.GetAsync("/v2/app/tags/list");
        Assert.Equal(["a", "b", "c", "d"], Strings(await all.Content.ReadAsStringAsync(), "tags"));
        Assert.False(all.Headers.Contains("Link"));

        using var page = await registry.Client.GetAsync("/v2/app/tags/list?n=2");
        Assert.Equal(["a", "b"], Strings(await page.Content.ReadAsStringAsync(), "tags"));
        Assert.Equal("</v2/app/tags/list?n=2&last=b>; rel=\"next\"", page.Headers.GetValues("Link").Single());

        using var next = await registry.Client.GetAsync("/v2/app/tags/list?n=2&last=b");
        Assert.Equal(["c", "d"], Strings(await next.Content.ReadAsStringAsync(), "tags"));
        Assert.False(next.Headers.Contains("Link"));

        using var unknown = await registry.Client.GetAsync("/v2/nothing/tags/list");
        await TestRegistry.AssertError(unknown, HttpStatusCode.NotFound, "NAME_UNKNOWN");
    }

    [Fact]
    public async Task Catalog_lists_repositories_in_order_with_pagination()
    {
        await using var registry = await StartAsync();
        foreach (var repository in new[] { "zeta", "alpha/one", "alpha/two" })
        {
            await registry.PushImageAsync(repository, "v1");
        }

        using var all = await registry.Client.GetAsync("/v2/_catalog");
        Assert.Equal(["alpha/one", "alpha/two", "zeta"], Strings(await all.Content.ReadAsStringAsync(), "repositories"));
        using var page = await registry.Client.GetAsync("/v2/_catalog?n=1&last=alpha/one");
        Assert.Equal(["alpha/two"], Strings(await page.Content.ReadAsStringAsync(), "repositories"));
        Assert.Contains("last=alpha%2Ftwo", page.Headers.GetValues("Link").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_endpoints_and_methods_are_refused()
    {
        await using var registry = await StartAsync();
        using var unknown = await registry.Client.GetAsync("/v2/app/unknown/thing");
        await TestRegistry.AssertError(unknown, HttpStatusCode.NotFound, "UNSUPPORTED");
        using var method = await registry.Client.PostAsync("/v2/app/tags/list", null);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, method.StatusCode);
    }

    private static string[] Strings(string json, string property)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.GetProperty(property).EnumerateArray().Select(e => e.GetString()!).ToArray();
    }
}

/// <summary>Every case of <see cref="RouteAndListingTests"/> against blobs in S3 and metadata in etcd (the run's radosgw and etcd).</summary>
[Collection(CephEtcdCollection.Name)]
public sealed class RouteAndListingOnS3Tests(CephEtcd engines) : RouteAndListingTests
{
    internal override TestStorage Storage { get; } = TestStorage.S3(engines);
}

/// <summary>Every case of <see cref="RouteAndListingTests"/> against blobs in S3 and metadata in the data directory (a single replica, no etcd).</summary>
[Collection(CephEtcdCollection.Name)]
public sealed class RouteAndListingOnS3LocalTests(CephEtcd engines) : RouteAndListingTests
{
    internal override TestStorage Storage { get; } = TestStorage.S3Local(engines);
}
