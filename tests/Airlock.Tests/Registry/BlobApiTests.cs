using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Airlock.Oci;
using Airlock.Registry;
using Airlock.Tests.Content;

namespace Airlock.Tests.Registry;

public class BlobApiTests
{
    /// <summary>The store under test: the filesystem store here; <see cref="BlobApiOnS3Tests"/> runs every case on S3 + etcd.</summary>
    internal virtual TestStorage Storage => TestStorage.FileSystem;

    private Task<TestRegistry> StartAsync(Func<RegistryServerOptions, RegistryServerOptions>? configure = null, string? dataDirectory = null) =>
        TestRegistry.StartAsync(configure, dataDirectory, Storage);

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public async Task Base_endpoint_answers_200_with_the_distribution_api_version()
    {
        await using var registry = await StartAsync();
        using var response = await registry.Client.GetAsync("/v2/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("registry/2.0", response.Headers.GetValues("Docker-Distribution-API-Version").Single());
    }

    [Fact]
    public async Task Monolithic_push_then_GET_and_HEAD_return_the_blob_with_its_digest()
    {
        await using var registry = await StartAsync();
        var content = Bytes("hello blob");
        using var push = await registry.PushBlobAsync("library/app", content);
        var digest = TestRegistry.DigestOf(content);
        Assert.Equal(HttpStatusCode.Created, push.StatusCode);
        Assert.Equal($"/v2/library/app/blobs/{digest}", push.Headers.Location!.OriginalString);
        Assert.Equal(digest.ToString(), push.Headers.GetValues("Docker-Content-Digest").Single());

        using var get = await registry.Client.GetAsync($"/v2/library/app/blobs/{digest}");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(content, await get.Content.ReadAsByteArrayAsync());
        Assert.Equal(digest.ToString(), get.Headers.GetValues("Docker-Content-Digest").Single());

        using var head = await registry.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/library/app/blobs/{digest}"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(content.Length, head.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task Large_blob_GET_returns_every_byte_over_the_zero_copy_path()
    {
        await using var registry = await StartAsync();
        var content = new byte[3 * 1024 * 1024 + 17];
        new Random(7).NextBytes(content);
        var digest = await registry.PushBlobOkAsync("big/one", content);
        for (var i = 0; i < 3; i++)
        {
            using var response = await registry.Client.GetAsync($"/v2/big/one/blobs/{digest}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(digest.ToString(), response.Headers.GetValues("Docker-Content-Digest").Single());
            Assert.Equal(digest, Digest.Sha256(await response.Content.ReadAsByteArrayAsync()));

            // The sendfile path ends the connection after the body (Kestrel no longer knows where it ended); a store
            // without local files streams through Kestrel and keeps it.
            Assert.Equal(Storage.LocalFiles, response.Headers.ConnectionClose == true);
        }

        // Ranges keep Kestrel's path and the connection.
        var ranged = new HttpRequestMessage(HttpMethod.Get, $"/v2/big/one/blobs/{digest}");
        ranged.Headers.TryAddWithoutValidation("Range", "bytes=100-199");
        using var partial = await registry.Client.SendAsync(ranged);
        Assert.Equal(content[100..200], await partial.Content.ReadAsByteArrayAsync());
        Assert.NotEqual(true, partial.Headers.ConnectionClose);
    }

    [Fact]
    public async Task Push_with_wrong_digest_returns_DIGEST_INVALID_and_stores_nothing()
    {
        await using var registry = await StartAsync();
        var wrong = TestRegistry.DigestOf(Bytes("something else"));
        using var monolithic = await registry.PushBlobAsync("app", Bytes("actual content"), wrong);
        await TestRegistry.AssertError(monolithic, HttpStatusCode.BadRequest, "DIGEST_INVALID");

        using var start = await registry.Client.PostAsync("/v2/app/blobs/uploads/", null);
        var location = start.Headers.Location!.OriginalString;
        using var put = await registry.Client.PutAsync($"{location}?digest={wrong}", new ByteArrayContent(Bytes("actual content")));
        await TestRegistry.AssertError(put, HttpStatusCode.BadRequest, "DIGEST_INVALID");

        Assert.Equal(0, await registry.CountStoredBlobsAsync());
        using var get = await registry.Client.GetAsync($"/v2/app/blobs/{wrong}");
        await TestRegistry.AssertError(get, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
        using var status = await registry.Client.GetAsync(location);
        await TestRegistry.AssertError(status, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact]
    public async Task Sha512_blobs_are_verified_and_served_by_their_sha512_digest()
    {
        await using var registry = await StartAsync();
        var content = Bytes("hashed with sha512");
        var digest = Digest.FromHash(Digest.Sha512Algorithm, System.Security.Cryptography.SHA512.HashData(content));
        using var push = await registry.PushBlobAsync("app", content, digest);
        Assert.Equal(HttpStatusCode.Created, push.StatusCode);
        Assert.Equal(content, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{digest}"));

        var wrong = Digest.FromHash(Digest.Sha512Algorithm, System.Security.Cryptography.SHA512.HashData(Bytes("other")));
        using var refused = await registry.PushBlobAsync("app", content, wrong);
        await TestRegistry.AssertError(refused, HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Theory]
    [InlineData("sha256:abc")]
    [InlineData("nonsense")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e")]
    public async Task Malformed_or_unsupported_digest_returns_DIGEST_INVALID(string digest)
    {
        await using var registry = await StartAsync();
        using var response = await registry.Client.PostAsync($"/v2/app/blobs/uploads/?digest={digest}", new ByteArrayContent(Bytes("x")));
        await TestRegistry.AssertError(response, HttpStatusCode.BadRequest, "DIGEST_INVALID");
        Assert.Equal(0, await registry.CountStoredBlobsAsync());
    }

    [Fact]
    public async Task Chunked_upload_reports_progress_and_commits_with_a_final_chunk()
    {
        await using var registry = await StartAsync();
        var content = Bytes("0123456789abcdef");
        using var start = await registry.Client.PostAsync("/v2/org/app/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var location = start.Headers.Location!.OriginalString;
        Assert.Equal(start.Headers.GetValues("Docker-Upload-UUID").Single(), location[(location.LastIndexOf('/') + 1)..]);
        Assert.Equal("0-0", start.Headers.GetValues("Range").Single());

        using var first = await PatchAsync(registry, location, content[..6], "0-5");
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal("0-5", first.Headers.GetValues("Range").Single());
        using var second = await PatchAsync(registry, location, content[6..12], "6-11");
        Assert.Equal("0-11", second.Headers.GetValues("Range").Single());

        using var status = await registry.Client.GetAsync(location);
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
        Assert.Equal("0-11", status.Headers.GetValues("Range").Single());

        var digest = TestRegistry.DigestOf(content);
        using var put = await registry.Client.PutAsync($"{location}?digest={digest}", new ByteArrayContent(content[12..]));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(content, await registry.Client.GetByteArrayAsync($"/v2/org/app/blobs/{digest}"));
    }

    [Fact]
    public async Task Out_of_order_chunk_returns_416_and_the_upload_can_continue()
    {
        await using var registry = await StartAsync();
        var content = Bytes("abcdefghij");
        using var start = await registry.Client.PostAsync("/v2/app/blobs/uploads/", null);
        var location = start.Headers.Location!.OriginalString;
        using var first = await PatchAsync(registry, location, content[..4], "0-3");
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);

        using var skipped = await PatchAsync(registry, location, content[6..], "6-9");
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, skipped.StatusCode);
        using var overlapping = await PatchAsync(registry, location, content[2..], "2-9");
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, overlapping.StatusCode);

        using var malformed = await PatchAsync(registry, location, content[4..], "four-nine");
        await TestRegistry.AssertError(malformed, HttpStatusCode.BadRequest, "BLOB_UPLOAD_INVALID");

        using var rest = await PatchAsync(registry, location, content[4..], "4-9");
        Assert.Equal(HttpStatusCode.Accepted, rest.StatusCode);
        var digest = TestRegistry.DigestOf(content);
        using var put = await registry.Client.PutAsync($"{location}?digest={digest}", null);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(content, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{digest}"));
    }

    [Fact]
    public async Task Cancelled_upload_is_gone()
    {
        await using var registry = await StartAsync();
        using var start = await registry.Client.PostAsync("/v2/app/blobs/uploads/", null);
        var location = start.Headers.Location!.OriginalString;
        using var patch = await PatchAsync(registry, location, Bytes("partial"), null);
        using var cancel = await registry.Client.DeleteAsync(location);
        Assert.Equal(HttpStatusCode.NoContent, cancel.StatusCode);
        using var status = await registry.Client.GetAsync(location);
        await TestRegistry.AssertError(status, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
        Assert.Equal(0, await registry.CountUploadLeftoversAsync());
    }

    [Fact]
    public async Task Upload_session_of_another_repository_is_unknown()
    {
        await using var registry = await StartAsync();
        using var start = await registry.Client.PostAsync("/v2/one/blobs/uploads/", null);
        var id = start.Headers.GetValues("Docker-Upload-UUID").Single();
        using var status = await registry.Client.GetAsync($"/v2/two/blobs/uploads/{id}");
        await TestRegistry.AssertError(status, HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact]
    public async Task Range_requests_return_206_and_unsatisfiable_ranges_416_with_the_size()
    {
        await using var registry = await StartAsync();
        var content = Bytes("0123456789");
        var digest = await registry.PushBlobOkAsync("app", content);

        async Task<HttpResponseMessage> GetRange(string range)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/app/blobs/{digest}");
            request.Headers.TryAddWithoutValidation("Range", range);
            return await registry.Client.SendAsync(request);
        }

        using var middle = await GetRange("bytes=2-5");
        Assert.Equal(HttpStatusCode.PartialContent, middle.StatusCode);
        Assert.Equal("2345", await middle.Content.ReadAsStringAsync());
        Assert.Equal("bytes 2-5/10", middle.Content.Headers.ContentRange!.ToString());

        using var open = await GetRange("bytes=7-");
        Assert.Equal("789", await open.Content.ReadAsStringAsync());
        using var suffix = await GetRange("bytes=-2");
        Assert.Equal("89", await suffix.Content.ReadAsStringAsync());

        using var outside = await GetRange("bytes=10-20");
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, outside.StatusCode);
        Assert.Equal("bytes */10", outside.Content.Headers.ContentRange!.ToString());
    }

    [Fact]
    public async Task Mount_from_a_repository_holding_the_blob_returns_201_otherwise_an_upload_session()
    {
        await using var registry = await StartAsync();
        var digest = await registry.PushBlobOkAsync("source/repo", Bytes("shared layer"));

        using var mounted = await registry.Client.PostAsync($"/v2/target/repo/blobs/uploads/?mount={digest}&from=source/repo", null);
        Assert.Equal(HttpStatusCode.Created, mounted.StatusCode);
        Assert.Equal($"/v2/target/repo/blobs/{digest}", mounted.Headers.Location!.OriginalString);
        Assert.Equal(Bytes("shared layer"), await registry.Client.GetByteArrayAsync($"/v2/target/repo/blobs/{digest}"));

        using var fallback = await registry.Client.PostAsync($"/v2/third/blobs/uploads/?mount={digest}&from=nowhere", null);
        Assert.Equal(HttpStatusCode.Accepted, fallback.StatusCode);
        Assert.True(fallback.Headers.Contains("Docker-Upload-UUID"));
    }

    [Fact]
    public async Task Blob_pushed_to_one_repository_is_not_readable_from_another()
    {
        await using var registry = await StartAsync();
        var digest = await registry.PushBlobOkAsync("mine", Bytes("private"));
        using var response = await registry.Client.GetAsync($"/v2/yours/blobs/{digest}");
        await TestRegistry.AssertError(response, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
    }

    [Fact]
    public async Task Deleted_blob_is_unknown_to_the_repository()
    {
        await using var registry = await StartAsync();
        var digest = await registry.PushBlobOkAsync("app", Bytes("to delete"));
        using var delete = await registry.Client.DeleteAsync($"/v2/app/blobs/{digest}");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        using var get = await registry.Client.GetAsync($"/v2/app/blobs/{digest}");
        await TestRegistry.AssertError(get, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
        using var again = await registry.Client.DeleteAsync($"/v2/app/blobs/{digest}");
        await TestRegistry.AssertError(again, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
    }

    internal static async Task<HttpResponseMessage> PatchAsync(TestRegistry registry, string location, byte[] chunk, string? contentRange)
    {
        var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = new ByteArrayContent(chunk) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        if (contentRange is not null)
        {
            request.Content.Headers.TryAddWithoutValidation("Content-Range", contentRange);
        }

        return await registry.Client.SendAsync(request);
    }
}

/// <summary>Every case of <see cref="BlobApiTests"/> against blobs in S3 and metadata in etcd (the run's radosgw and etcd).</summary>
[Collection(CephEtcdCollection.Name)]
public sealed class BlobApiOnS3Tests(CephEtcd engines) : BlobApiTests
{
    internal override TestStorage Storage { get; } = TestStorage.S3(engines);
}

/// <summary>Every case of <see cref="BlobApiTests"/> against blobs in S3 and metadata in the data directory (a single replica, no etcd).</summary>
[Collection(CephEtcdCollection.Name)]
public sealed class BlobApiOnS3LocalTests(CephEtcd engines) : BlobApiTests
{
    internal override TestStorage Storage { get; } = TestStorage.S3Local(engines);
}
