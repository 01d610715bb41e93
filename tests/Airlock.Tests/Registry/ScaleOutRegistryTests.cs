using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Airlock.Content.S3;
using Airlock.Oci;
using Airlock.Tests.Content;

namespace Airlock.Tests.Registry;

/// <summary>
/// Two registry replicas on different ports sharing one S3 bucket prefix (radosgw) and one etcd key prefix, as a load
/// balancer would put them: whatever one accepted the other serves at once, an upload continues across them, and a
/// stopped backend answers 503 until it is back.
/// </summary>
[Collection(CephEtcdCollection.Name)]
public sealed class ScaleOutRegistryTests(CephEtcd engines) : IAsyncLifetime
{
    private readonly string _prefix = "r-" + Guid.NewGuid().ToString("N")[..12];
    private readonly List<TestRegistry> _replicas = [];

    private TestRegistry First => _replicas[0];

    private TestRegistry Second => _replicas[1];

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 2; i++)
        {
            _replicas.Add(await StartReplicaAsync());
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var replica in _replicas)
        {
            await replica.DisposeAsync();
        }
    }

    private Task<TestRegistry> StartReplicaAsync(Func<S3StoreOptions, S3StoreOptions>? configure = null)
    {
        var data = Directory.CreateTempSubdirectory("airlock-replica-").FullName;
        var shared = S3EtcdStoreTests.Options(engines, _prefix, Path.Combine(data, "s3-buffers")) with { RequestTimeout = TimeSpan.FromSeconds(3) };
        shared = shared with { Metadata = shared.Metadata! with { RequestTimeout = TimeSpan.FromSeconds(2) } };
        shared = configure?.Invoke(shared) ?? shared;
        return TestRegistry.StartAsync(options => options with { SharedStore = shared }, data);
    }

    [Fact]
    public async Task An_image_pushed_through_one_replica_is_pulled_through_the_other_as_soon_as_the_push_returned()
    {
        var image = Image("pushed through the first replica");
        await PushImageAsync(First.Client, "team/app", "v1", image);

        using var manifest = await GetManifestAsync(Second.Client, "team/app", "v1");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal(image.Manifest, await manifest.Content.ReadAsByteArrayAsync());
        Assert.Equal(image.Layer, await Second.Client.GetByteArrayAsync($"/v2/team/app/blobs/{Digest.Sha256(image.Layer)}"));
        Assert.Contains("\"team/app\"", await Second.Client.GetStringAsync("/v2/_catalog"));
        Assert.Contains("\"v1\"", await Second.Client.GetStringAsync("/v2/team/app/tags/list"));

        // A tag moved through the second replica is what the first one serves from then on.
        var next = Image("pushed through the second replica");
        await PushImageAsync(Second.Client, "team/app", "v1", next);
        using var moved = await GetManifestAsync(First.Client, "team/app", "v1");
        Assert.Equal(next.Manifest, await moved.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task One_upload_whose_chunks_alternate_between_the_replicas_becomes_one_verified_blob()
    {
        // Chunks of 3 MiB: parts of 5 MiB are sent from whichever replica fills them, the tail is carried in the bucket.
        var content = new byte[16 << 20];
        new Random(16).NextBytes(content);
        var digest = Digest.Sha256(content);
        using var start = await First.Client.PostAsync("/v2/chunks/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var location = start.Headers.Location!.ToString();
        const int Chunk = 3 << 20;
        for (int offset = 0, i = 0; offset < content.Length; offset += Chunk, i++)
        {
            var client = i % 2 == 0 ? Second.Client : First.Client;
            var length = Math.Min(Chunk, content.Length - offset);
            using var body = new ByteArrayContent(content, offset, length);
            body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            body.Headers.ContentRange = new ContentRangeHeaderValue(offset, offset + length - 1);
            using var patch = await client.PatchAsync(location, body);
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            Assert.Equal($"0-{offset + length - 1}", patch.Headers.GetValues("Range").Single());
            location = patch.Headers.Location!.ToString();
        }

        // A wrong digest stores nothing; the session is over either way, so the right one is pushed again.
        using (var wrong = await First.Client.PutAsync($"{location}{(location.Contains('?') ? '&' : '?')}digest={Digest.Sha256("other"u8)}", null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }

        using (var head = await Second.Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/chunks/blobs/{digest}")))
        {
            Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        }

        await PushBlobAsync(Second.Client, "chunks", content);
        Assert.Equal(content, await First.Client.GetByteArrayAsync($"/v2/chunks/blobs/{digest}"));
    }

    [Fact]
    public async Task A_blob_put_whole_after_its_post_goes_to_its_content_address_while_it_arrives_and_the_session_ends()
    {
        var content = new byte[(11 << 20) + 5];
        new Random(11).NextBytes(content);
        var digest = Digest.Sha256(content);
        using var start = await First.Client.PostAsync("/v2/whole/blobs/uploads/", null);
        var location = start.Headers.Location!.ToString();

        // Every byte but the last is sent, so two parts are on their way while the request is still open.
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var body = new CrossProcessGcTests.GatedContent(content[..^1], content[^1..], sent, release.Task);
        var put = First.Client.PutAsync($"{location}{(location.Contains('?') ? '&' : '?')}digest={digest}", body);
        await sent.Task;
        using var s3 = S3EtcdStoreTests.Client(engines);
        string[] uploads = [];
        for (var wait = 0; uploads.Length == 0 && wait < 600; wait++)
        {
            await Task.Delay(wait == 0 ? 0 : 100);
            uploads = [.. ((await s3.ListMultipartUploadsAsync(new Amazon.S3.Model.ListMultipartUploadsRequest { BucketName = "airlock-tests", Prefix = _prefix + "/" })).MultipartUploads ?? []).Select(u => u.Key)];
        }

        Assert.Equal([$"{_prefix}/blobs/{digest.Algorithm}/{digest.Encoded}"], uploads);
        release.SetResult();
        using var response = await put;
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(content, await Second.Client.GetByteArrayAsync($"/v2/whole/blobs/{digest}"));
        using var status = await Second.Client.GetAsync(location);
        Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
    }

    [Fact]
    public async Task With_s3_redirect_a_blob_get_is_a_presigned_307_that_radosgw_serves()
    {
        var layer = Encoding.UTF8.GetBytes("served by radosgw itself");
        await PushBlobAsync(First.Client, "direct", layer);
        await using var redirecting = await StartReplicaAsync(options => options with { Redirect = true });
        using var noFollow = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = redirecting.Client.BaseAddress };
        using var response = await noFollow.GetAsync($"/v2/direct/blobs/{Digest.Sha256(layer)}");
        Assert.Equal(HttpStatusCode.TemporaryRedirect, response.StatusCode);
        var location = response.Headers.Location!;
        Assert.StartsWith(engines.S3Endpoint.ToString(), location.ToString());
        using var plain = new HttpClient();
        Assert.Equal(layer, await plain.GetByteArrayAsync(location));
    }

    [Fact]
    public async Task While_etcd_is_stopped_requests_fail_with_503_and_work_again_when_it_is_back()
    {
        var image = Image("before etcd stopped");
        await PushImageAsync(First.Client, "outage", "v1", image);
        engines.PauseEtcd(paused: true);
        try
        {
            using var stopped = await GetManifestAsync(Second.Client, "outage", "v1");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, stopped.StatusCode);
            Assert.Contains("etcd", await stopped.Content.ReadAsStringAsync());
        }
        finally
        {
            engines.PauseEtcd(paused: false);
        }

        using var back = await GetManifestAsync(Second.Client, "outage", "v1");
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        Assert.Equal(image.Manifest, await back.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task While_the_object_store_is_stopped_blob_requests_fail_with_503_and_work_again_when_it_is_back()
    {
        var layer = Encoding.UTF8.GetBytes("before radosgw stopped");
        await PushBlobAsync(First.Client, "outage-s3", layer);
        engines.PauseObjectStore(paused: true);
        try
        {
            using var stopped = await Second.Client.GetAsync($"/v2/outage-s3/blobs/{Digest.Sha256(layer)}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, stopped.StatusCode);
            Assert.Contains("object store", await stopped.Content.ReadAsStringAsync());
        }
        finally
        {
            engines.PauseObjectStore(paused: false);
        }

        Assert.Equal(layer, await Second.Client.GetByteArrayAsync($"/v2/outage-s3/blobs/{Digest.Sha256(layer)}"));
    }

    [Fact]
    public async Task Gc_on_one_replica_while_the_other_serves_pushes_never_leaves_a_tag_with_a_missing_blob()
    {
        // Garbage for the collection to find: an orphan blob. The collector is a third instance of the store (as
        // `airlock registry gc` is) whose clock runs a day ahead, so whatever the replicas wrote is past any grace
        // period, including the blobs of pushes whose manifest is not put yet: the race the guard must win.
        await PushBlobAsync(First.Client, "junk", Encoding.UTF8.GetBytes("an orphan nobody refers to"));
        var buffers = Directory.CreateTempSubdirectory("airlock-collector-").FullName;
        await using var store = await S3RegistryStore.OpenAsync(S3EtcdStoreTests.Options(engines, _prefix, buffers), new AheadClock(TimeSpan.FromDays(1)), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None);
        var collector = new Airlock.Content.GarbageCollector(store, TimeSpan.FromMinutes(10), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var pushes = Task.Run(async () =>
        {
            for (var i = 0; i < 12; i++)
            {
                // Grace zero: a collection may delete blobs between their push and the manifest; the PUT is then
                // refused (never accepted with a hole) and the push starts over.
                for (var attempt = 0; ; attempt++)
                {
                    try
                    {
                        await PushImageAsync(Second.Client, "busy", $"t{i}", Image($"image {i}"));
                        break;
                    }
                    catch (Xunit.Sdk.EqualException) when (attempt < 20)
                    {
                    }
                }
            }
        });
        var deleted = 0;
        var collections = 0;
        while (!pushes.IsCompleted || collections < 2)
        {
            try
            {
                deleted += (await collector.CollectAsync(dryRun: false, CancellationToken.None)).DeletedBlobs.Count;
                collections++;
            }
            catch (Airlock.Content.GarbageCollectionBusyException)
            {
            }
        }

        await pushes;
        Assert.True(deleted >= 1, "the orphan was not collected");
        for (var i = 0; i < 12; i++)
        {
            var image = Image($"image {i}");
            using var manifest = await GetManifestAsync(First.Client, "busy", $"t{i}");
            Assert.Equal(image.Manifest, await manifest.Content.ReadAsByteArrayAsync());
            Assert.Equal(image.Layer, await First.Client.GetByteArrayAsync($"/v2/busy/blobs/{Digest.Sha256(image.Layer)}"));
            Assert.Equal(image.Config, await First.Client.GetByteArrayAsync($"/v2/busy/blobs/{Digest.Sha256(image.Config)}"));
        }
    }

    [Fact]
    public async Task A_replica_killed_during_pushes_loses_nothing_and_leaves_no_tag_pointing_at_a_missing_blob()
    {
        var data = Directory.CreateTempSubdirectory("airlock-replica-killed-").FullName;
        var port = CliRegistryTests.FreePort();
        var victim = CliRegistryTests.StartCli(data, port,
            extraArguments: ["--storage", engines.StorageUrl(_prefix), "--metadata", $"etcd://{engines.EtcdEndpoint}/{_prefix}/"],
            environment: new Dictionary<string, string> { ["AWS_ACCESS_KEY_ID"] = CephEtcd.AccessKey, ["AWS_SECRET_ACCESS_KEY"] = CephEtcd.SecretKey });
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await CliRegistryTests.WaitReadyAsync(client);
            var done = await PushUntilKilledAsync(client, "killed", victim.Id);

            // Everything the killed replica acknowledged is served whole by the survivor, and no tag it set (acknowledged
            // or not) points at a manifest or blob that is missing.
            Assert.True(done.Length >= 6);
            foreach (var i in done)
            {
                using var manifest = await GetManifestAsync(First.Client, "killed", $"t{i}");
                Assert.Equal(Image($"killed {i}").Manifest, await manifest.Content.ReadAsByteArrayAsync());
            }

            var tags = await First.Client.GetStringAsync("/v2/killed/tags/list");
            foreach (var i in Enumerable.Range(0, done.Max() + 2).Where(i => tags.Contains($"\"t{i}\"", StringComparison.Ordinal)))
            {
                var image = Image($"killed {i}");
                using var manifest = await GetManifestAsync(First.Client, "killed", $"t{i}");
                Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
                Assert.Equal(image.Layer, await First.Client.GetByteArrayAsync($"/v2/killed/blobs/{Digest.Sha256(image.Layer)}"));
                Assert.Equal(image.Config, await First.Client.GetByteArrayAsync($"/v2/killed/blobs/{Digest.Sha256(image.Config)}"));
            }
        }
        finally
        {
            Signals.Send(victim.Id, Signals.Kill);
            await victim.WaitForExitAsync();
            victim.Dispose();
            Directory.Delete(data, recursive: true);
        }
    }

    private sealed class AheadClock(TimeSpan ahead) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + ahead;
    }

    internal sealed record TestImageBytes(byte[] Config, byte[] Layer, byte[] Manifest);

    internal static TestImageBytes Image(string text)
    {
        var config = Encoding.UTF8.GetBytes($"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"comment\":\"{text}\"}}");
        var layer = Encoding.UTF8.GetBytes("layer: " + text);
        var manifest = Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\"," +
            $"\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{Digest.Sha256(config)}\",\"size\":{config.Length}}}," +
            $"\"layers\":[{{\"mediaType\":\"{MediaTypes.OciLayerGzip}\",\"digest\":\"{Digest.Sha256(layer)}\",\"size\":{layer.Length}}}]}}");
        return new TestImageBytes(config, layer, manifest);
    }

    /// <summary>
    /// Pushes the images <c>t0</c>, <c>t1</c>, … (<see cref="Image"/> of "REPOSITORY N") until the registry stops
    /// answering, and kills it (SIGKILL) in the middle of the pushes once six were acknowledged; the acknowledged ones.
    /// </summary>
    internal static async Task<int[]> PushUntilKilledAsync(HttpClient client, string repository, int registry)
    {
        var acknowledged = new List<int>();
        var enough = new TaskCompletionSource();
        var pushing = Task.Run(async () =>
        {
            for (var i = 0; ; i++)
            {
                try
                {
                    await PushImageAsync(client, repository, $"t{i}", Image($"{repository} {i}"));
                    lock (acknowledged)
                    {
                        acknowledged.Add(i);
                    }

                    if (i == 5)
                    {
                        enough.TrySetResult();
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or Xunit.Sdk.XunitException or TaskCanceledException)
                {
                    enough.TrySetResult();
                    return;
                }
            }
        });
        await enough.Task;
        Signals.Send(registry, Signals.Kill);
        await pushing;
        lock (acknowledged)
        {
            return [.. acknowledged];
        }
    }

    internal static async Task PushImageAsync(HttpClient client, string repository, string tag, TestImageBytes image)
    {
        await PushBlobAsync(client, repository, image.Config);
        await PushBlobAsync(client, repository, image.Layer);
        using var content = new ByteArrayContent(image.Manifest);
        content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.OciManifest);
        using var put = await client.PutAsync($"/v2/{repository}/manifests/{tag}", content);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
    }

    internal static async Task PushBlobAsync(HttpClient client, string repository, byte[] blob)
    {
        using var content = new ByteArrayContent(blob);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await client.PostAsync($"/v2/{repository}/blobs/uploads/?digest={Digest.Sha256(blob)}", content);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    private static Task<HttpResponseMessage> GetManifestAsync(HttpClient client, string repository, string reference)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/{repository}/manifests/{reference}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        return client.SendAsync(request);
    }
}
