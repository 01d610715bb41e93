using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Airlock.Content;
using Airlock.Oci;
using Airlock.Registry;
using Airlock.Registry.Auth;
using Airlock.Registry.PullThrough;
using Airlock.Remote;
using Airlock.Tests.Registry.Auth;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Registry;

/// <summary>
/// <c>airlock registry --proxy</c>: a real Airlock registry on loopback plays the upstream, another is the
/// cache; clients talk HTTP to the cache as containerd does (<c>?ns=</c>) or with a registry path prefix.
/// </summary>
public sealed class PullThroughTests
{
    private const string Registry = "upstream.example";

    [Fact]
    public async Task Pull_by_tag_caches_manifest_and_blobs_and_serves_them_after_the_upstream_stopped()
    {
        var upstream = await TestRegistry.StartAsync();
        var image = await upstream.PushImageAsync("team/app", "1");
        await using var cache = await StartCacheAsync(upstream);

        await AssertPullsAsync(cache, "team/app", "1", image, ns: Registry);
        await upstream.DisposeAsync();

        await AssertPullsAsync(cache, "team/app", "1", image, ns: Registry);
        using var byDigest = await cache.Client.GetAsync($"/v2/team/app/manifests/{image.ManifestDigest}?ns={Registry}");
        Assert.Equal(HttpStatusCode.OK, byDigest.StatusCode);
        Assert.Contains("upstream.example/team/app", await ListRepositoriesAsync(cache));
        var metrics = await cache.Client.GetStringAsync("/metrics");
        Assert.Contains("airlock_registry_proxy_stale_tags_total 0", metrics, StringComparison.Ordinal);
        Assert.Matches("airlock_registry_proxy_hits_total [1-9]", metrics);
        Assert.Contains("airlock_registry_proxy_misses_total 3", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sixteen_concurrent_pulls_of_a_cold_blob_cause_one_upstream_download()
    {
        await using var upstream = await TestRegistry.StartAsync();
        var layer = RandomNumberGenerator.GetBytes(8 << 20);
        var image = await upstream.PushImageAsync("big/layer", "1", layer);
        await using var cache = await StartCacheAsync(upstream);
        var sentBefore = await BytesSentAsync(upstream);

        var pulls = Enumerable.Range(0, 16).Select(async _ =>
        {
            using var client = new HttpClient { BaseAddress = cache.Server.Address };
            var bytes = await client.GetByteArrayAsync($"/v2/big/layer/blobs/{image.LayerDigest}?ns={Registry}");
            return Digest.Sha256(bytes);
        });
        var digests = await Task.WhenAll(pulls);

        Assert.All(digests, d => Assert.Equal(image.LayerDigest, d));
        var sent = await BytesSentAsync(upstream) - sentBefore;
        Assert.InRange(sent, layer.Length, layer.Length + 4096);
        Assert.Contains("airlock_registry_proxy_upstream_blob_fetches_total 1\n", await cache.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_that_disconnects_from_a_cold_pull_does_not_stop_the_download_others_share()
    {
        await using var upstream = await TestRegistry.StartAsync();
        var layer = RandomNumberGenerator.GetBytes(8 << 20);
        var image = await upstream.PushImageAsync("big/layer", "1", layer);
        var sentBefore = await BytesSentAsync(upstream);
        await using var held = await HeldUpstream.StartAsync(upstream, holdBlobsAfter: 1 << 20);
        await using var cache = await StartCacheAsync(held.Address);
        var url = $"/v2/big/layer/blobs/{image.LayerDigest}?ns={Registry}";

        // The first client starts the download (it is the tee client), reads a little and goes away while the
        // upstream holds the rest of the body: the download is unfinished, whatever the machine's speed.
        using (var first = new HttpClient { BaseAddress = cache.Server.Address })
        {
            using var response = await first.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var body = await response.Content.ReadAsStreamAsync();
            await body.ReadExactlyAsync(new byte[64 << 10]);
            await held.Holding;
            Assert.Null(await cache.Server.Storage.Blobs.SizeAsync(image.LayerDigest, CancellationToken.None));
        }

        // A second client joins the same download, still held, and gets all of it once the upstream goes on.
        using var second = new HttpClient { BaseAddress = cache.Server.Address };
        using var joined = await second.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, joined.StatusCode);
        Assert.Null(await cache.Server.Storage.Blobs.SizeAsync(image.LayerDigest, CancellationToken.None));
        held.Release();
        Assert.Equal(image.LayerDigest, Digest.Sha256(await joined.Content.ReadAsByteArrayAsync()));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await cache.Server.Storage.Blobs.SizeAsync(image.LayerDigest, CancellationToken.None) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the blob was not stored");
            await Task.Delay(20);
        }

        Assert.Contains("airlock_registry_proxy_upstream_blob_fetches_total 1\n", await cache.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);
        Assert.InRange(await BytesSentAsync(upstream) - sentBefore, layer.Length, layer.Length + (1 << 20));
    }

    [Fact]
    public async Task A_first_client_that_falls_behind_the_download_still_gets_the_whole_blob_from_the_file_and_then_the_store()
    {
        await using var upstream = await TestRegistry.StartAsync();
        var layer = RandomNumberGenerator.GetBytes(32 << 20);
        var image = await upstream.PushImageAsync("big/layer", "1", layer);
        await using var cache = await StartCacheAsync(upstream);
        var url = $"/v2/big/layer/blobs/{image.LayerDigest}?ns={Registry}";

        using var slow = new HttpClient { BaseAddress = cache.Server.Address };
        using var response = await slow.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
        await using var body = await response.Content.ReadAsStreamAsync();
        var received = new MemoryStream();
        var start = new byte[64 << 10];
        await body.ReadExactlyAsync(start);
        received.Write(start);

        // It stops reading until the download was stored without waiting for it.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await cache.Server.Storage.Blobs.SizeAsync(image.LayerDigest, CancellationToken.None) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the download waited for a client that does not read");
            await Task.Delay(50);
        }

        await body.CopyToAsync(received);
        Assert.Equal(image.LayerDigest, Digest.Sha256(received.ToArray()));
    }

    [Fact]
    public async Task A_tag_is_rechecked_after_the_ttl_and_follows_the_upstream_but_not_before()
    {
        await using var upstream = await TestRegistry.StartAsync();
        var first = await upstream.PushImageAsync("team/app", "stable", Encoding.UTF8.GetBytes("first"));
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        await using var cache = await StartCacheAsync(upstream, configure: o => o with { Time = clock }, tagTtl: TimeSpan.FromMinutes(5));
        Assert.Equal(first.ManifestDigest, await ManifestDigestAsync(cache, "team/app", "stable", Registry));

        var second = await upstream.PushImageAsync("team/app", "stable", Encoding.UTF8.GetBytes("second"));
        clock.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal(first.ManifestDigest, await ManifestDigestAsync(cache, "team/app", "stable", Registry));

        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(second.ManifestDigest, await ManifestDigestAsync(cache, "team/app", "stable", Registry));
        await AssertPullsAsync(cache, "team/app", "stable", second, ns: Registry);
    }

    [Fact]
    public async Task After_the_ttl_a_down_upstream_leaves_the_cached_tag_served()
    {
        var upstream = await TestRegistry.StartAsync();
        var image = await upstream.PushImageAsync("team/app", "1");
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        await using var cache = await StartCacheAsync(upstream, configure: o => o with { Time = clock }, timeout: TimeSpan.FromSeconds(2));
        await AssertPullsAsync(cache, "team/app", "1", image, ns: Registry);
        await upstream.DisposeAsync();

        clock.Advance(TimeSpan.FromHours(1));
        await AssertPullsAsync(cache, "team/app", "1", image, ns: Registry);
        Assert.Contains("airlock_registry_proxy_stale_tags_total 1\n", await cache.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ns_selects_the_upstream_and_a_registry_path_prefix_does_the_same_without_ns()
    {
        await using var one = await TestRegistry.StartAsync();
        await using var two = await TestRegistry.StartAsync();
        var fromOne = await one.PushImageAsync("library/app", "1", Encoding.UTF8.GetBytes("one"));
        var fromTwo = await two.PushImageAsync("library/app", "1", Encoding.UTF8.GetBytes("two"));
        await using var cache = await TestRegistry.StartAsync(o => o with
        {
            PullThrough = new PullThroughOptions { Upstreams = [Upstream("one.example", one), Upstream("*", two)] },
        });

        Assert.Equal(fromOne.ManifestDigest, await ManifestDigestAsync(cache, "library/app", "1", "one.example"));
        Assert.Equal(fromTwo.ManifestDigest, await ManifestDigestAsync(cache, "library/app", "1", "quay.io"));
        Assert.Equal(fromTwo.ManifestDigest, await ManifestDigestAsync(cache, "library/app", "1", "registry.example:5000"));
        await AssertPullsAsync(cache, "one.example/library/app", "1", fromOne, ns: null);
        await AssertPullsAsync(cache, "registry.example_5000/library/app", "1", fromTwo, ns: null);

        // Neither ns nor a registry prefix: a local repository, which nobody pushed.
        using var local = await cache.Client.GetAsync("/v2/library/app/manifests/1");
        await TestRegistry.AssertError(local, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        Assert.Equal(["one.example/library/app", "quay.io/library/app", "registry.example_5000/library/app"], await ListRepositoriesAsync(cache));
    }

    [Fact]
    public async Task Pushes_to_a_proxied_repository_are_refused_and_local_repositories_still_take_pushes()
    {
        await using var upstream = await TestRegistry.StartAsync();
        await using var cache = await StartCacheAsync(upstream);

        using (var proxied = await cache.PushBlobAsync("upstream.example/team/app", Encoding.UTF8.GetBytes("x")))
        {
            await TestRegistry.AssertError(proxied, HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
            Assert.Contains("pull-through cache of upstream.example", (await TestRegistry.ErrorOf(proxied)).Detail, StringComparison.Ordinal);
        }

        using (var body = new ByteArrayContent([1]))
        using (var viaNs = await cache.Client.PostAsync($"/v2/team/app/blobs/uploads/?ns={Registry}", body))
        {
            await TestRegistry.AssertError(viaNs, HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
        }

        await cache.PushImageAsync("site/app", "1");
    }

    [Fact]
    public async Task A_private_upstream_is_never_served_to_anonymous_clients_even_with_anonymous_pull()
    {
        var htpasswd = Path.Combine(Directory.CreateTempSubdirectory("airlock-proxy-auth-").FullName, "htpasswd");
        await File.WriteAllLinesAsync(htpasswd, [HtpasswdFileTests.Entry("alice", "wonderland"), HtpasswdFileTests.Entry("cache", "secret")]);
        await using var upstream = await TestRegistry.StartAsync(o => o with
        {
            AccessController = new BasicAccessController(new HtpasswdFile(htpasswd, TimeProvider.System), AccessPolicy.Create(anonymousPull: false)),
        });
        var privateImage = await PushWithCredentialsAsync(upstream, "secret/app", "1", "cache:secret");
        await using var open = await TestRegistry.StartAsync();
        var publicImage = await open.PushImageAsync("public/app", "1");

        var pullThrough = new PullThroughOptions
        {
            Upstreams = [Upstream("private.example", upstream), Upstream("public.example", open)],
            Remote = new RemoteOptions
            {
                Credentials = new StaticCredentialSource(new Dictionary<string, RegistryCredential>
                {
                    [upstream.Server.Address.Authority] = new("cache", "secret"),
                }),
            },
        };
        await using var cache = await TestRegistry.StartComposedAsync(settings => settings with
        {
            Server = settings.Server with { PullThrough = pullThrough },
            Auth = new RegistryAuthOptions { HtpasswdPath = htpasswd, AnonymousPull = true },
        });

        using (var anonymous = await cache.Client.GetAsync("/v2/secret/app/manifests/1?ns=private.example"))
        {
            await TestRegistry.AssertError(anonymous, HttpStatusCode.Unauthorized, "UNAUTHORIZED");
        }

        using (var anonymousBlob = await cache.Client.GetAsync($"/v2/private.example/secret/app/blobs/{privateImage.LayerDigest}"))
        {
            await TestRegistry.AssertError(anonymousBlob, HttpStatusCode.Unauthorized, "UNAUTHORIZED");
        }

        await AssertPullsAsync(cache, "public/app", "1", publicImage, ns: "public.example");
        cache.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:wonderland")));
        await AssertPullsAsync(cache, "secret/app", "1", privateImage, ns: "private.example");

        // Once cached, still only for authenticated clients.
        cache.Client.DefaultRequestHeaders.Authorization = null;
        using var afterwards = await cache.Client.GetAsync($"/v2/secret/app/blobs/{privateImage.LayerDigest}?ns=private.example");
        await TestRegistry.AssertError(afterwards, HttpStatusCode.Unauthorized, "UNAUTHORIZED");
    }

    [Fact]
    public async Task A_private_upstream_on_a_registry_without_authentication_refuses_to_start()
    {
        var options = new RegistryServerOptions
        {
            DataDirectory = Directory.CreateTempSubdirectory("airlock-proxy-").FullName,
            PullThrough = new PullThroughOptions
            {
                Upstreams = [new PullThroughUpstream("quay.io", new Uri("https://quay.io"))],
                Remote = new RemoteOptions { Credentials = new StaticCredentialSource(new Dictionary<string, RegistryCredential> { ["quay.io"] = new("u", "p") }) },
            },
        };

        var problem = Assert.Single(options.Validate());
        Assert.Contains("--proxy quay.io=https://quay.io/ has credentials", problem, StringComparison.Ordinal);
        Assert.Contains("--htpasswd", problem, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => RegistryServer.StartAsync(options, NullLoggerFactory.Instance, CancellationToken.None));
    }

    [Fact]
    public async Task A_blob_whose_upstream_bytes_do_not_match_its_digest_fails_and_nothing_is_stored()
    {
        await using var upstream = await TestRegistry.StartAsync();
        var layer = RandomNumberGenerator.GetBytes(3 << 20);
        var image = await upstream.PushImageAsync("team/app", "1", layer);
        var stored = Path.Combine(upstream.BlobsDirectory, "sha256", image.LayerDigest.Encoded[..2], image.LayerDigest.Encoded);
        var corrupt = (byte[])layer.Clone();
        corrupt[^1] ^= 0xff;
        await File.WriteAllBytesAsync(stored, corrupt);
        await using var cache = await StartCacheAsync(upstream);

        var url = $"/v2/team/app/blobs/{image.LayerDigest}?ns={Registry}";

        // The client that starts the download (tee) and those that join it (temp file) are all cut short.
        var served = await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            using var client = new HttpClient { BaseAddress = cache.Server.Address };
            return await ReadFailingAsync(client, url);
        }));
        Assert.All(served, bytes => Assert.True(bytes < layer.Length, $"a client got all {bytes} bytes of a blob that does not match its digest"));
        Assert.Null(await cache.Server.Storage.Blobs.SizeAsync(image.LayerDigest, CancellationToken.None));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cache.DataDirectory, "registry", "ingest")));

        // Range requests wait for the verified blob instead, and get the error itself.
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Range = new RangeHeaderValue(0, 9);
        using var ranged = await cache.Client.SendAsync(request);
        await TestRegistry.AssertError(ranged, HttpStatusCode.BadGateway, "UNKNOWN");
        Assert.Contains("wrong content", (await TestRegistry.ErrorOf(ranged)).Detail, StringComparison.Ordinal);
        Assert.Null(await cache.Server.Storage.Blobs.SizeAsync(image.LayerDigest, CancellationToken.None));
    }

    [Fact]
    public async Task A_manifest_whose_upstream_bytes_do_not_match_its_digest_is_refused_with_502()
    {
        await using var upstream = await TestRegistry.StartAsync();
        var image = await upstream.PushImageAsync("team/app", "1");
        var other = TestImage.Create(Encoding.UTF8.GetBytes("other"));
        var stored = Path.Combine(upstream.BlobsDirectory, "sha256", image.ManifestDigest.Encoded[..2], image.ManifestDigest.Encoded);
        await File.WriteAllBytesAsync(stored, other.Manifest);
        await using var cache = await StartCacheAsync(upstream);

        using var response = await cache.Client.GetAsync($"/v2/team/app/manifests/{image.ManifestDigest}?ns={Registry}");

        await TestRegistry.AssertError(response, HttpStatusCode.BadGateway, "UNKNOWN");
        Assert.Null(await cache.Server.Storage.Blobs.SizeAsync(image.ManifestDigest, CancellationToken.None));
    }

    [Fact]
    public async Task An_unreachable_upstream_with_a_cold_cache_fails_with_502_within_the_timeout()
    {
        // Accepts connections and never answers: the worst kind of down.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var address = new Uri($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture)}");
        await using var cache = await TestRegistry.StartAsync(o => o with
        {
            PullThrough = new PullThroughOptions { Upstreams = [new PullThroughUpstream(Registry, address)], Timeout = TimeSpan.FromSeconds(1) },
        });

        var watch = Stopwatch.StartNew();
        using var manifest = await cache.Client.GetAsync($"/v2/team/app/manifests/1?ns={Registry}");
        using var blob = await cache.Client.GetAsync($"/v2/team/app/blobs/{Digest.Sha256("x"u8)}?ns={Registry}");
        watch.Stop();

        await TestRegistry.AssertError(manifest, HttpStatusCode.BadGateway, "UNKNOWN");
        await TestRegistry.AssertError(blob, HttpStatusCode.BadGateway, "UNKNOWN");
        Assert.Contains(address.Authority, (await TestRegistry.ErrorOf(blob)).Detail, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(12), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task A_failed_upstream_fetch_nobody_waited_for_is_not_remembered()
    {
        await using var upstream = await TestRegistry.StartAsync();
        var image = await upstream.PushImageAsync("team/app", "1");
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fail = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failing = true;
        await using var held = await HeldUpstream.StartAsync(upstream, intercept: async context =>
        {
            if (!Volatile.Read(ref failing) || !context.Request.Path.Value!.Contains("/manifests/", StringComparison.Ordinal))
            {
                return false;
            }

            // The upstream hangs until the test lets the fetch fail.
            asked.TrySetResult();
            await fail.Task;
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return true;
        });
        await using var cache = await StartCacheAsync(held.Address);

        // The only client gives up while the upstream hangs; the fetch fails afterwards with no one waiting.
        using (var impatient = new CancellationTokenSource())
        {
            var pull = cache.Client.GetAsync($"/v2/team/app/manifests/1?ns={Registry}", impatient.Token);
            await asked.Task;
            await impatient.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pull);
        }

        fail.SetResult();
        await WaitForMetricAsync(cache, "airlock_registry_proxy_upstream_fetches_in_flight 0\n");
        Assert.Contains("airlock_registry_proxy_upstream_errors_total 1\n", await cache.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);

        Volatile.Write(ref failing, false);
        await AssertPullsAsync(cache, "team/app", "1", image, ns: Registry);
    }

    [Fact]
    public async Task A_tag_the_upstream_does_not_have_is_404_manifest_unknown()
    {
        await using var upstream = await TestRegistry.StartAsync();
        await using var cache = await StartCacheAsync(upstream);

        using var response = await cache.Client.GetAsync($"/v2/team/app/manifests/nope?ns={Registry}");

        await TestRegistry.AssertError(response, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task Garbage_collection_keeps_cached_images_pullable()
    {
        var upstream = await TestRegistry.StartAsync();
        var image = await upstream.PushImageAsync("team/app", "1");
        await using var cache = await StartCacheAsync(upstream);
        await AssertPullsAsync(cache, "team/app", "1", image, ns: Registry);
        await upstream.DisposeAsync();

        var result = await new GarbageCollector(cache.Server.Storage, TimeSpan.Zero, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);

        Assert.Empty(result.DeletedBlobs);
        Assert.Empty(result.DeletedLinks);
        await AssertPullsAsync(cache, "team/app", "1", image, ns: Registry);
    }

    [Theory]
    [InlineData("docker.io", "is not REGISTRY=URL")]
    [InlineData("docker.io=", "is not REGISTRY=URL")]
    [InlineData("docker.io=ftp://mirror", "is not an http(s) URL")]
    [InlineData("docker.io=https://mirror/some/path", "is not an http(s) URL")]
    [InlineData("Bad Name=https://mirror", "is not a registry name")]
    public void A_bad_proxy_value_names_the_problem(string value, string expected)
    {
        Assert.False(PullThroughUpstream.TryParse(value, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_report_duplicate_registries_and_bad_durations_together()
    {
        var options = new PullThroughOptions
        {
            Upstreams = [new PullThroughUpstream("docker.io", new Uri("https://a")), new PullThroughUpstream("docker.io", new Uri("https://b"))],
            TagTtl = TimeSpan.FromSeconds(-1),
            Timeout = TimeSpan.Zero,
        };

        Assert.Equal(3, options.Validate().Count);
    }

    private static PullThroughUpstream Upstream(string registry, TestRegistry upstream) => new(registry, upstream.Server.Address);

    private static Task<TestRegistry> StartCacheAsync(TestRegistry upstream, Func<RegistryServerOptions, RegistryServerOptions>? configure = null,
        TimeSpan? tagTtl = null, TimeSpan? timeout = null) =>
        StartCacheAsync(upstream.Server.Address, configure, tagTtl, timeout);

    private static Task<TestRegistry> StartCacheAsync(Uri upstream, Func<RegistryServerOptions, RegistryServerOptions>? configure = null,
        TimeSpan? tagTtl = null, TimeSpan? timeout = null) =>
        TestRegistry.StartAsync(o =>
        {
            o = o with
            {
                PullThrough = new PullThroughOptions
                {
                    Upstreams = [new PullThroughUpstream(Registry, upstream)],
                    TagTtl = tagTtl ?? PullThroughOptions.DefaultTagTtl,
                    Timeout = timeout ?? PullThroughOptions.DefaultTimeout,
                },
            };
            return configure?.Invoke(o) ?? o;
        });

    private static string Query(string? ns) => ns is null ? string.Empty : "?ns=" + Uri.EscapeDataString(ns);

    private static async Task AssertPullsAsync(TestRegistry cache, string repository, string tag, TestImage image, string? ns)
    {
        using var manifest = await cache.Client.GetAsync($"/v2/{repository}/manifests/{tag}{Query(ns)}");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal(image.Manifest, await manifest.Content.ReadAsByteArrayAsync());
        foreach (var (digest, content) in new[] { (image.ConfigDigest, image.Config), (image.LayerDigest, image.Layer) })
        {
            using var blob = await cache.Client.GetAsync($"/v2/{repository}/blobs/{digest}{Query(ns)}");
            Assert.Equal(HttpStatusCode.OK, blob.StatusCode);
            Assert.Equal(content, await blob.Content.ReadAsByteArrayAsync());
        }
    }

    private static async Task<Digest> ManifestDigestAsync(TestRegistry cache, string repository, string tag, string ns)
    {
        using var response = await cache.Client.GetAsync($"/v2/{repository}/manifests/{tag}{Query(ns)}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return Digest.Sha256(await response.Content.ReadAsByteArrayAsync());
    }

    private static async Task<List<string>> ListRepositoriesAsync(TestRegistry cache)
    {
        using var json = System.Text.Json.JsonDocument.Parse(await cache.Client.GetStringAsync("/v2/_catalog"));
        return json.RootElement.GetProperty("repositories").EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    /// <summary>Waits until the cache's metrics show <paramref name="line"/> (a state reached, not a time passed).</summary>
    private static async Task WaitForMetricAsync(TestRegistry cache, string line)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!(await cache.Client.GetStringAsync("/metrics")).Contains(line, StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the metrics never showed {line.Trim()}");
            await Task.Delay(20);
        }
    }

    private static async Task<long> BytesSentAsync(TestRegistry registry)
    {
        var metrics = await registry.Client.GetStringAsync("/metrics");
        var line = metrics.Split('\n').Single(l => l.StartsWith("airlock_registry_bytes_sent_total ", StringComparison.Ordinal));
        return long.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
    }

    /// <summary>Reads a response that must fail part-way; returns how many body bytes arrived before it did.</summary>
    private static async Task<long> ReadFailingAsync(HttpClient client, string url)
    {
        long received = 0;
        try
        {
            using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return 0;
            }

            await using var body = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[81920];
            int read;
            while ((read = await body.ReadAsync(buffer)) > 0)
            {
                received += read;
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            return received;
        }

        return received;
    }

    private static async Task<TestImage> PushWithCredentialsAsync(TestRegistry registry, string repository, string tag, string userPass)
    {
        var saved = registry.Client.DefaultRequestHeaders.Authorization;
        registry.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(userPass)));
        try
        {
            return await registry.PushImageAsync(repository, tag);
        }
        finally
        {
            registry.Client.DefaultRequestHeaders.Authorization = saved;
        }
    }
}
