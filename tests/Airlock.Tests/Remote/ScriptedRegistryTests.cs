using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Airlock.Content;
using Airlock.Oci;
using Airlock.Remote;
using Microsoft.AspNetCore.Http;

namespace Airlock.Tests.Remote;

/// <summary>Retries, resume, verification and paging against a Kestrel server scripted to misbehave on cue.</summary>
public sealed class ScriptedRegistryTests
{
    private static readonly byte[] ManifestBytes = TestImage.Create(layers: 1, layerSize: 10).ManifestBytes;
    private static readonly Digest ManifestDigest = Digest.Sha256(ManifestBytes);

    private static RemoteOptions FastOptions(InstantDelayTimeProvider time) => new()
    {
        TimeProvider = time,
        ResponseTimeout = Timeout.InfiniteTimeSpan,
        RetryBaseDelay = TimeSpan.FromSeconds(1),
    };

    private static async Task WriteManifestAsync(HttpContext context)
    {
        context.Response.ContentType = MediaTypes.OciManifest;
        context.Response.Headers["Docker-Content-Digest"] = ManifestDigest.ToString();
        context.Response.ContentLength = ManifestBytes.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await context.Response.Body.WriteAsync(ManifestBytes);
        }
    }

    [Fact]
    public async Task Two_503s_are_retried_with_growing_backoff_and_the_third_attempt_succeeds()
    {
        var requests = 0;
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            if (Interlocked.Increment(ref requests) <= 2)
            {
                context.Response.StatusCode = 503;
                return;
            }

            await WriteManifestAsync(context);
        });
        var time = new InstantDelayTimeProvider();
        using var client = new RegistryClient(FastOptions(time));
        var (descriptor, content) = await client.GetManifestAsync(ImageReference.Parse($"{server.Host}/team/app"), "1.0", default);
        Assert.Equal(ManifestDigest, descriptor.Digest);
        Assert.Equal(ManifestBytes, content.ToArray());
        Assert.Equal(3, requests);
        Assert.Equal(2, time.Delays.Count);
        Assert.InRange(time.Delays[0], TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(1));
        Assert.InRange(time.Delays[1], TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task A_429_waits_as_long_as_Retry_After_says()
    {
        var requests = 0;
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            if (Interlocked.Increment(ref requests) == 1)
            {
                context.Response.StatusCode = 429;
                context.Response.Headers.RetryAfter = "7";
                return;
            }

            await WriteManifestAsync(context);
        });
        var time = new InstantDelayTimeProvider();
        using var client = new RegistryClient(FastOptions(time));
        var resolved = await client.ResolveAsync(ImageReference.Parse($"{server.Host}/team/app"), "1.0", default);
        Assert.Equal(ManifestDigest, resolved.Digest);
        Assert.Equal([TimeSpan.FromSeconds(7)], time.Delays);
    }

    [Fact]
    public async Task A_permanent_404_is_not_retried()
    {
        var requests = 0;
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            Interlocked.Increment(ref requests);
            context.Response.StatusCode = 404;
            await context.Response.WriteAsync("""{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}""");
        });
        var time = new InstantDelayTimeProvider();
        using var client = new RegistryClient(FastOptions(time));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(ImageReference.Parse($"{server.Host}/team/app"), "1.0", default));
        Assert.Equal("MANIFEST_UNKNOWN", ex.Code);
        Assert.Equal(1, requests);
        Assert.Empty(time.Delays);
    }

    [Fact]
    public async Task A_refused_connection_is_retried_a_bounded_number_of_times_then_reported()
    {
        var port = DistributionRegistry.FreePort();
        var time = new InstantDelayTimeProvider();
        using var client = new RegistryClient(FastOptions(time) with { MaxAttempts = 3 });
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.ResolveAsync(ImageReference.Parse($"127.0.0.1:{port}/team/app"), "1.0", default));
        Assert.Null(ex.StatusCode);
        Assert.Contains($"127.0.0.1:{port}", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, time.Delays.Count);
    }

    [Fact]
    public async Task Resolve_falls_back_to_GET_when_HEAD_gives_no_digest()
    {
        var methods = new ConcurrentQueue<string>();
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            methods.Enqueue(context.Request.Method);
            Assert.Contains(MediaTypes.DockerManifestList, context.Request.Headers.Accept.ToString(), StringComparison.Ordinal);
            context.Response.ContentType = MediaTypes.OciManifest;
            if (!HttpMethods.IsHead(context.Request.Method))
            {
                await context.Response.Body.WriteAsync(ManifestBytes);
            }
        });
        using var client = new RegistryClient(new RemoteOptions());
        var resolved = await client.ResolveAsync(ImageReference.Parse($"{server.Host}/team/app"), "1.0", default);
        Assert.Equal(ManifestDigest, resolved.Digest);
        Assert.Equal(ManifestBytes.Length, resolved.Size);
        Assert.Equal(["HEAD", "GET"], methods);
    }

    [Fact]
    public async Task A_manifest_fetched_by_digest_whose_bytes_do_not_match_is_refused()
    {
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            context.Response.ContentType = MediaTypes.OciManifest;
            await context.Response.Body.WriteAsync(TestImage.Create(layers: 1, layerSize: 10).ManifestBytes);
        });
        using var client = new RegistryClient(new RemoteOptions());
        var ex = await Assert.ThrowsAsync<DigestMismatchException>(() => client.GetManifestAsync(ImageReference.Parse($"{server.Host}/team/app"), ManifestDigest.ToString(), default));
        Assert.Equal(ManifestDigest, ex.Expected);
    }

    [Fact]
    public async Task A_manifest_larger_than_4_MiB_is_refused()
    {
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            context.Response.ContentType = MediaTypes.OciManifest;
            // No Content-Length: the cap must hold while reading too.
            var chunk = new byte[64 * 1024];
            for (var i = 0; i < 70; i++)
            {
                await context.Response.Body.WriteAsync(chunk);
            }
        });
        using var client = new RegistryClient(new RemoteOptions());
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(ImageReference.Parse($"{server.Host}/team/app"), "big", default));
        Assert.Contains("larger than", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_blob_download_cut_mid_way_resumes_with_a_range_request_and_verifies_the_whole_blob()
    {
        var blob = new byte[1024 * 1024];
        Random.Shared.NextBytes(blob);
        var descriptor = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256(blob), Size = blob.Length };
        var ranges = new ConcurrentQueue<string>();
        var gets = 0;
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            var range = context.Request.Headers.Range.ToString();
            ranges.Enqueue(range);
            var attempt = Interlocked.Increment(ref gets);
            if (string.IsNullOrEmpty(range))
            {
                context.Response.ContentLength = blob.Length;
                await context.Response.Body.WriteAsync(blob.AsMemory(0, 300_000));
                await context.Response.Body.FlushAsync();
                context.Abort();
                return;
            }

            var from = long.Parse(range["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {from}-{blob.Length - 1}/{blob.Length}";
            context.Response.ContentLength = blob.Length - from;
            // The second leg is cut as well, once, to prove resumes chain.
            var end = attempt == 2 ? from + 200_000 : blob.Length;
            await context.Response.Body.WriteAsync(blob.AsMemory((int)from, (int)(end - from)));
            if (attempt == 2)
            {
                await context.Response.Body.FlushAsync();
                context.Abort();
            }
        });
        using var client = new RegistryClient(new RemoteOptions());
        await using var stream = await client.OpenBlobAsync(ImageReference.Parse($"{server.Host}/team/app"), descriptor, default);
        var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(blob, copy.ToArray());
        var seen = ranges.ToArray();
        Assert.Equal(3, seen.Length);
        Assert.Equal("", seen[0]);
        Assert.StartsWith("bytes=", seen[1], StringComparison.Ordinal);
        var firstResume = long.Parse(seen[1]["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
        var secondResume = long.Parse(seen[2]["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(firstResume, 1, 300_000);
        // An abort may discard bytes still in flight, so the client resumes where it really got to.
        Assert.InRange(secondResume, firstResume + 1, firstResume + 200_000);
    }

    [Fact]
    public async Task A_blob_download_that_stalls_is_resumed_after_the_response_timeout_and_cancellation_is_not_resumed()
    {
        var blob = new byte[100_000];
        Random.Shared.NextBytes(blob);
        var descriptor = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256(blob), Size = blob.Length };
        var requests = 0;
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            if (HttpMethods.IsHead(context.Request.Method))
            {
                return;
            }

            var range = context.Request.Headers.Range.ToString();
            Interlocked.Increment(ref requests);
            if (string.IsNullOrEmpty(range))
            {
                context.Response.ContentLength = blob.Length;
                await context.Response.Body.WriteAsync(blob.AsMemory(0, 40_000));
                await context.Response.Body.FlushAsync();
                // Stall: keep the connection open and send nothing more.
                await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
                return;
            }

            var from = int.Parse(range["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {from}-{blob.Length - 1}/{blob.Length}";
            context.Response.ContentLength = blob.Length - from;
            await context.Response.Body.WriteAsync(blob.AsMemory(from));
        });
        var repo = ImageReference.Parse($"{server.Host}/team/app");
        using var client = new RegistryClient(new RemoteOptions { ResponseTimeout = TimeSpan.FromSeconds(1) });
        Assert.True(await client.BlobExistsAsync(repo, descriptor.Digest, default)); // warm server and client up: the timeout is short
        await using (var stream = await client.OpenBlobAsync(repo, descriptor, default))
        {
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(blob, copy.ToArray());
        }

        Assert.Equal(2, requests);

        requests = 0;
        using var patient = new RegistryClient(new RemoteOptions { ResponseTimeout = TimeSpan.FromSeconds(30) });
        using var cancel = new CancellationTokenSource();
        await using var stalled = await patient.OpenBlobAsync(repo, descriptor, cancel.Token);
        cancel.CancelAfter(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stalled.CopyToAsync(Stream.Null, cancel.Token));
        Assert.Equal(1, requests);
    }

    [Fact]
    public async Task A_corrupted_blob_fails_verification_and_nothing_is_committed()
    {
        var blob = new byte[200_000];
        Random.Shared.NextBytes(blob);
        var descriptor = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256(blob), Size = blob.Length };
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            var corrupted = (byte[])blob.Clone();
            corrupted[150_000] ^= 0xff;
            context.Response.ContentLength = corrupted.Length;
            await context.Response.Body.WriteAsync(corrupted);
        });
        await using var store = RemoteImageStore.Create(ImageReference.Parse($"{server.Host}/team/app"), new RemoteOptions());
        var directory = Directory.CreateTempSubdirectory("airlock-remote-").FullName;
        try
        {
            var final = Path.Combine(directory, descriptor.Digest.Encoded);
            await Assert.ThrowsAsync<DigestMismatchException>(async () =>
            {
                await using var content = await store.OpenBlobAsync(descriptor, default);
                await using var ingest = BlobIngest.Start(Path.Combine(directory, "ingest.tmp"));
                await ingest.CopyFromAsync(content, default);
                await ingest.CommitAsync(descriptor.Digest, final, default, descriptor.Size);
            });
            Assert.False(File.Exists(final));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task An_interrupted_upload_restarts_from_the_beginning_when_the_content_can_seek_and_fails_cleanly_when_not()
    {
        var puts = 0;
        var received = new ConcurrentQueue<byte[]>();
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            if (HttpMethods.IsPost(context.Request.Method))
            {
                context.Response.StatusCode = 202;
                context.Response.Headers.Location = "/v2/team/app/blobs/uploads/" + Guid.NewGuid();
                return;
            }

            var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.Enqueue(body.ToArray());
            context.Response.StatusCode = Interlocked.Increment(ref puts) == 1 ? 503 : 201;
        });
        var content = Encoding.UTF8.GetBytes(new string('x', 100_000));
        var descriptor = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256(content), Size = content.Length };
        var time = new InstantDelayTimeProvider();
        using var client = new RegistryClient(FastOptions(time));
        var repo = ImageReference.Parse($"{server.Host}/team/app");

        Assert.Equal(BlobPushResult.Uploaded, await client.PushBlobAsync(repo, descriptor, new MemoryStream(content), null, default));
        Assert.Equal(2, received.Count);
        Assert.All(received, r => Assert.Equal(content, r));

        puts = 0;
        received.Clear();
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PushBlobAsync(repo, descriptor, new OneWayStream(content), null, default));
        Assert.Contains("cannot be rewound", ex.Message, StringComparison.Ordinal);
        Assert.Single(received);
    }

    [Fact]
    public async Task Tags_follow_Link_pagination_with_n_and_last()
    {
        var queries = new ConcurrentQueue<string>();
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            queries.Enqueue(context.Request.QueryString.Value ?? "");
            var last = context.Request.Query["last"].ToString();
            var all = new[] { "a", "b", "c", "d", "e" };
            var page = all.Where(t => string.CompareOrdinal(t, last) > 0).Take(int.Parse(context.Request.Query["n"]!, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            if (page.Length > 0 && page[^1] != all[^1])
            {
                context.Response.Headers.Link = $"</v2/team/app/tags/list?n=2&last={page[^1]}>; rel=\"next\"";
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync($"{{\"name\":\"team/app\",\"tags\":[{string.Join(',', page.Select(t => $"\"{t}\""))}]}}");
        });
        using var client = new RegistryClient(new RemoteOptions());
        var tags = await client.ListTagsAsync(ImageReference.Parse($"{server.Host}/team/app"), default, pageSize: 2);
        Assert.Equal(["a", "b", "c", "d", "e"], tags);
        Assert.Equal(["?n=2", "?n=2&last=b", "?n=2&last=d"], queries);
    }

    [Fact]
    public async Task The_referrers_API_is_used_when_the_registry_has_it_and_artifactType_filters()
    {
        var sig = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256("sig"u8), Size = 3, ArtifactType = "application/vnd.example.sig" };
        var sbom = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256("sbom"u8), Size = 4, ArtifactType = "application/vnd.example.sbom" };
        var paths = new ConcurrentQueue<string>();
        await using var server = await TestHttpServer.StartAsync(async context =>
        {
            paths.Enqueue(context.Request.Path.Value!);
            context.Response.ContentType = MediaTypes.OciIndex;
            await context.Response.Body.WriteAsync(TestImage.Index([sig, sbom]).Content);
        });
        using var client = new RegistryClient(new RemoteOptions());
        var repo = ImageReference.Parse($"{server.Host}/team/app");
        Assert.Equal([sig.Digest, sbom.Digest], (await client.ReferrersAsync(repo, ManifestDigest, null, default)).Select(d => d.Digest));
        Assert.Equal(sbom.Digest, Assert.Single(await client.ReferrersAsync(repo, ManifestDigest, "application/vnd.example.sbom", default)).Digest);
        Assert.All(paths, p => Assert.Equal($"/v2/team/app/referrers/{ManifestDigest}", p));
    }

    /// <summary>A stream that can only be read forward once, like a pipe or a download.</summary>
    private sealed class OneWayStream(byte[] content) : Stream
    {
        private readonly MemoryStream _inner = new(content);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
