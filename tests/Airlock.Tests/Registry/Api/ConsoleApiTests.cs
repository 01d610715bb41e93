using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Airlock.Registry;
using Airlock.Registry.Api;
using Airlock.Registry.Auth;
using Airlock.Tests.Content;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Registry.Api;

/// <summary>The JSON API under /api/v1 and the console under /ui/, on a real registry over HTTP.</summary>
public class ConsoleApiTests : IDisposable
{
    private const string Signature = "application/vnd.dev.cosign.artifact.sig.v1+json";
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-console-api-").FullName;

    /// <summary>The store under test: the filesystem store here; <see cref="ConsoleApiOnS3Tests"/> runs every case on S3 + etcd.</summary>
    internal virtual TestStorage Storage => TestStorage.FileSystem;

    public void Dispose()
    {
        Directory.Delete(_directory, recursive: true);
        GC.SuppressFinalize(this);
    }

    private Task<TestRegistry> StartAsync(Func<RegistryServerOptions, RegistryServerOptions>? configure = null) =>
        TestRegistry.StartAsync(configure, storage: Storage);

    [Fact]
    public async Task Repositories_are_searched_sorted_by_each_column_and_paged()
    {
        await using var registry = await StartAsync();
        await registry.PushImageAsync("team-a/small", "1", Encoding.UTF8.GetBytes("s"));
        await registry.PushImageAsync("team-a/big", "1", new byte[5000]);
        await registry.PushImageAsync("team-a/big", "2", new byte[5001]);
        await registry.PushImageAsync("team-b/middle", "1", new byte[2000]);

        Assert.Equal(["team-a/big", "team-a/small", "team-b/middle"], Names(await GetJsonAsync(registry.Client, "/api/v1/repositories")));
        Assert.Equal(["team-a/big", "team-a/small"], Names(await GetJsonAsync(registry.Client, "/api/v1/repositories?q=TEAM-A")));
        Assert.Equal(["team-a/big", "team-b/middle", "team-a/small"], Names(await GetJsonAsync(registry.Client, "/api/v1/repositories?sort=size&order=desc")));
        Assert.Equal(["team-a/small", "team-b/middle", "team-a/big"], Names(await GetJsonAsync(registry.Client, "/api/v1/repositories?sort=tags")));
        Assert.Equal("team-b/middle", Names(await GetJsonAsync(registry.Client, "/api/v1/repositories?sort=pushed&order=desc"))[0]);

        var first = await GetJsonAsync(registry.Client, "/api/v1/repositories?limit=2&order=desc");
        Assert.Equal(["team-b/middle", "team-a/small"], Names(first));
        var second = await GetJsonAsync(registry.Client, $"/api/v1/repositories?limit=2&order=desc&cursor={first.GetProperty("next").GetString()}");
        Assert.Equal(["team-a/big"], Names(second));
        Assert.Equal(JsonValueKind.Null, second.TryGetProperty("next", out var next) ? next.ValueKind : JsonValueKind.Null);

        var big = (await GetJsonAsync(registry.Client, "/api/v1/repositories?q=big")).GetProperty("repositories")[0];
        Assert.Equal(2, big.GetProperty("tags").GetInt32());
        Assert.True(big.GetProperty("size").GetInt64() > 10_000, big.ToString());
    }

    [Fact]
    public async Task A_page_by_name_asks_the_access_rules_only_about_the_names_it_walks()
    {
        var access = new CountingAccess(name => int.Parse(name[^2..], System.Globalization.CultureInfo.InvariantCulture) % 2 == 0);
        await using var registry = await StartAsync(o => o with { AccessController = access });
        for (var i = 0; i < 40; i++)
        {
            await registry.PushImageAsync($"repo-{i:00}", "1");
        }

        access.Asked.Clear();
        var page = await GetJsonAsync(registry.Client, "/api/v1/repositories?limit=3&cursor=repo-20");

        Assert.Equal(["repo-22", "repo-24", "repo-26"], Names(page));
        Assert.Equal(["repo-21", "repo-22", "repo-23", "repo-24", "repo-25", "repo-26"], access.Asked);
    }

    [Fact]
    public async Task A_user_limited_by_the_access_file_sees_and_reads_only_repositories_it_may_pull()
    {
        using var auth = Authentication(useTokens: false);
        await using var registry = await StartAsync(o => o with { AccessController = auth.AccessController, ConsoleAccessController = auth.ConsoleAccessController });
        using var admin = registry.Client;
        Authorize(admin, "admin");
        var shared = new byte[3000];
        var mine = await registry.PushImageAsync("team-a/app", "1", shared);
        await registry.PushImageAsync("team-a/other", "1", shared);
        await registry.PushImageAsync("team-b/secret", "1", shared);
        using var alice = new HttpClient { BaseAddress = registry.Server.Address };
        Authorize(alice, "alice");

        Assert.Equal(["team-a/app", "team-a/other"], Names(await GetJsonAsync(alice, "/api/v1/repositories")));
        Assert.Equal(["team-a/app", "team-a/other", "team-b/secret"], Names(await GetJsonAsync(admin, "/api/v1/repositories")));
        Assert.Equal(["team-a/app", "team-a/other"], Names(await GetJsonAsync(alice, "/api/v1/repositories?sort=size")));
        using (var denied = await alice.GetAsync("/api/v1/repositories/team-b/secret"))
        {
            await TestRegistry.AssertError(denied, HttpStatusCode.Forbidden, "DENIED");
        }

        // The layer is in all three; alice is told only of the one she may pull.
        var layer = (await GetJsonAsync(alice, $"/api/v1/repositories/team-a/app/manifests/{mine.ManifestDigest}")).GetProperty("layers")[0];
        Assert.Equal(["team-a/other"], layer.GetProperty("sharedWith").EnumerateArray().Select(e => e.GetString()));
        var forAdmin = (await GetJsonAsync(admin, $"/api/v1/repositories/team-a/app/manifests/{mine.ManifestDigest}")).GetProperty("layers")[0];
        Assert.Equal(["team-a/other", "team-b/secret"], forAdmin.GetProperty("sharedWith").EnumerateArray().Select(e => e.GetString()));

        var info = await GetJsonAsync(alice, "/api/v1");
        Assert.Equal("alice", info.GetProperty("user").GetString());
        Assert.False(info.GetProperty("features").GetProperty("storage").GetBoolean());
        Assert.True((await GetJsonAsync(admin, "/api/v1")).GetProperty("features").GetProperty("storage").GetBoolean());
        using (var storage = await alice.GetAsync("/api/v1/storage"))
        {
            await TestRegistry.AssertError(storage, HttpStatusCode.Forbidden, "DENIED");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_api_and_the_console_need_the_credentials_v2_needs_in_a_scheme_a_browser_speaks(bool useTokens)
    {
        using var auth = Authentication(useTokens);
        await using var registry = await StartAsync(o => o with { AccessController = auth.AccessController, ConsoleAccessController = auth.ConsoleAccessController });

        foreach (var path in new[] { "/api/v1", "/api/v1/repositories", "/api/v1/bundles", "/ui/", "/ui/repositories/team-a/app", "/ui/assets/anything.js" })
        {
            using var anonymous = await registry.Client.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal($"Basic realm=\"{BasicAccessController.Realm}\"", anonymous.Headers.WwwAuthenticate.ToString());
        }

        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/ui/");
        wrong.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:wrong")));
        using (var refused = await registry.Client.SendAsync(wrong))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        Authorize(registry.Client, "alice");
        using var page = await registry.Client.GetAsync("/ui/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("alice", (await GetJsonAsync(registry.Client, "/api/v1")).GetProperty("user").GetString());
    }

    [Fact]
    public async Task With_the_console_off_ui_answers_404_and_the_api_stays()
    {
        await using var registry = await StartAsync(o => o with { Console = false });

        using var page = await registry.Client.GetAsync("/ui/");
        using var asset = await registry.Client.GetAsync("/ui/assets/app.js");
        using var api = await registry.Client.GetAsync("/api/v1");

        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, asset.StatusCode);
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);
    }

    [Fact]
    public async Task The_console_is_one_page_for_every_path_and_its_assets_are_compressed_and_cached_for_good()
    {
        await using var registry = await StartAsync();
        using var page = await registry.Client.GetAsync("/ui/repositories/some/deep/name");
        var html = await page.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("no-cache", page.Headers.CacheControl?.ToString());
        Assert.Contains("default-src 'none'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        var script = System.Text.RegularExpressions.Regex.Match(html, "src=\"(/ui/assets/app-[A-Z0-9]+\\.js)\"").Groups[1].Value;
        Assert.NotEmpty(script);

        using var request = new HttpRequestMessage(HttpMethod.Get, script);
        request.Headers.AcceptEncoding.ParseAdd("gzip");
        using var asset = await registry.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
        Assert.Equal("gzip", asset.Content.Headers.ContentEncoding.Single());
        Assert.Equal("text/javascript", asset.Content.Headers.ContentType?.MediaType);
        Assert.Contains("immutable", asset.Headers.CacheControl?.ToString(), StringComparison.Ordinal);

        using var again = new HttpRequestMessage(HttpMethod.Get, script);
        again.Headers.IfNoneMatch.Add(asset.Headers.ETag!);
        using var notModified = await registry.Client.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);

        using var missing = await registry.Client.GetAsync("/ui/assets/nothing.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var bare = await registry.Client.GetAsync("/ui");
        Assert.Equal(HttpStatusCode.OK, bare.StatusCode); // redirected to /ui/
    }

    [Fact]
    public async Task A_tag_shows_its_platforms_size_build_time_and_referrers_by_artifact_type()
    {
        await using var registry = await StartAsync();
        var amd64 = await PushConfiguredImageAsync(registry, "app", "amd64", "2025-03-04T05:06:07Z");
        var arm64 = await PushConfiguredImageAsync(registry, "app", "arm64", "2025-03-04T05:06:07Z");
        var index = JsonSerializer.SerializeToUtf8Bytes(new
        {
            schemaVersion = 2,
            mediaType = MediaTypes.OciIndex,
            manifests = new[]
            {
                new { mediaType = MediaTypes.OciManifest, digest = Digest.Sha256(amd64).ToString(), size = amd64.Length, platform = new { architecture = "amd64", os = "linux" } },
                new { mediaType = MediaTypes.OciManifest, digest = Digest.Sha256(arm64).ToString(), size = arm64.Length, platform = new { architecture = "arm64", os = "linux" } },
            },
        });
        using (var put = await registry.PutManifestAsync("app", "1", index, MediaTypes.OciIndex))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        var signature = TestImage.Create(Encoding.UTF8.GetBytes("signed"), artifactType: Signature, configMediaType: MediaTypes.OciEmpty,
            subject: new Descriptor { MediaType = MediaTypes.OciIndex, Digest = Digest.Sha256(index), Size = index.Length });
        await registry.PushBlobOkAsync("app", signature.Config);
        await registry.PushBlobOkAsync("app", signature.Layer);
        using (var put = await registry.PutManifestAsync("app", signature.ManifestDigest.ToString(), signature.Manifest))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        var tag = (await GetJsonAsync(registry.Client, "/api/v1/repositories/app")).GetProperty("tags")[0];

        Assert.Equal("1", tag.GetProperty("tag").GetString());
        Assert.Equal(Digest.Sha256(index).ToString(), tag.GetProperty("digest").GetString());
        Assert.Equal(MediaTypes.OciIndex, tag.GetProperty("mediaType").GetString());
        Assert.Equal(["linux/amd64", "linux/arm64"], tag.GetProperty("platforms").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal(new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.Zero), tag.GetProperty("created").GetDateTimeOffset());
        Assert.True(tag.GetProperty("size").GetInt64() > index.Length + amd64.Length + arm64.Length, tag.ToString());
        var referrer = Assert.Single(tag.GetProperty("referrers").EnumerateArray());
        Assert.Equal(Signature, referrer.GetProperty("artifactType").GetString());
        Assert.Equal(signature.ManifestDigest.ToString(), referrer.GetProperty("digest").GetString());
    }

    [Fact]
    public async Task A_manifest_page_has_its_layers_config_history_and_labels()
    {
        await using var registry = await StartAsync();
        var manifest = await PushConfiguredImageAsync(registry, "app", "amd64", "2025-01-02T03:04:05Z", tag: "v1");

        var page = await GetJsonAsync(registry.Client, $"/api/v1/repositories/app/manifests/{Digest.Sha256(manifest)}");

        Assert.Equal(["v1"], page.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        var layer = Assert.Single(page.GetProperty("layers").EnumerateArray());
        Assert.Equal(1234, layer.GetProperty("size").GetInt64());
        var config = page.GetProperty("config");
        Assert.Equal("linux/amd64", config.GetProperty("platform").GetString());
        Assert.Equal("team-a", config.GetProperty("labels").GetProperty("org.example.team").GetString());
        Assert.Equal("/bin/sh -c echo amd64", config.GetProperty("history")[0].GetProperty("created_by").GetString());

        using var missing = await registry.Client.GetAsync($"/api/v1/repositories/app/manifests/{Digest.Sha256("nothing"u8.ToArray())}");
        await TestRegistry.AssertError(missing, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task A_load_record_needs_push_on_its_repositories_and_names_only_manifests_that_are_there()
    {
        using var auth = Authentication(useTokens: false);
        await using var registry = await StartAsync(o => o with { AccessController = auth.AccessController, ConsoleAccessController = auth.ConsoleAccessController });
        Authorize(registry.Client, "admin");
        var image = await registry.PushImageAsync("team-a/app", "1");
        var secret = await registry.PushImageAsync("team-b/secret", "1");
        using var alice = new HttpClient { BaseAddress = registry.Server.Address };
        Authorize(alice, "alice");

        string Record(string repository, Digest digest, string file = "bundle.tar.zst") =>
            $$"""{"file":"{{file}}","images":[{"repository":"{{repository}}","tag":"1","digest":"{{digest}}","mediaType":"{{MediaTypes.OciManifest}}","source":"docker.io/{{repository}}:1"}]}""";

        using (var pushing = await PostAsync(alice, Record("team-a/app", image.ManifestDigest)))
        {
            Assert.Equal(HttpStatusCode.Created, pushing.StatusCode);
        }

        using (var notHers = await PostAsync(alice, Record("team-b/secret", secret.ManifestDigest)))
        {
            await TestRegistry.AssertError(notHers, HttpStatusCode.Forbidden, "DENIED");
        }

        using (var absent = await PostAsync(registry.Client, Record("team-a/app", secret.ManifestDigest)))
        {
            await TestRegistry.AssertError(absent, HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        }

        using (var folder = await PostAsync(registry.Client, Record("team-a/app", image.ManifestDigest, file: "../etc/passwd")))
        {
            await TestRegistry.AssertError(folder, HttpStatusCode.BadRequest, "UNSUPPORTED");
        }

        using (var garbage = await PostAsync(registry.Client, "{\"file\":"))
        {
            await TestRegistry.AssertError(garbage, HttpStatusCode.BadRequest, "UNSUPPORTED");
        }

        using (var adminRecord = await PostAsync(registry.Client, Record("team-b/secret", secret.ManifestDigest, file: "secret.tar")))
        {
            Assert.Equal(HttpStatusCode.Created, adminRecord.StatusCode);
        }

        var forAlice = (await GetJsonAsync(alice, "/api/v1/bundles")).GetProperty("records");
        var record = Assert.Single(forAlice.EnumerateArray());
        Assert.Equal("bundle.tar.zst", record.GetProperty("file").GetString());
        Assert.Equal("alice", record.GetProperty("user").GetString());
        Assert.Equal(image.ManifestDigest.ToString(), record.GetProperty("images")[0].GetProperty("digest").GetString());
        var forAdmin = (await GetJsonAsync(registry.Client, "/api/v1/bundles")).GetProperty("records");
        Assert.Equal(["secret.tar", "bundle.tar.zst"], forAdmin.EnumerateArray().Select(r => r.GetProperty("file").GetString()));
    }

    [Fact]
    public async Task The_storage_report_has_the_store_over_time_the_collections_and_the_uploads_in_flight()
    {
        await using var registry = await StartAsync();
        await registry.PushImageAsync("app", "1", new byte[4096]);
        using var started = await registry.Client.PostAsync("/v2/app/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        using var chunk = new ByteArrayContent(new byte[777]);
        chunk.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using (var patched = await registry.Client.PatchAsync(started.Headers.Location, chunk))
        {
            Assert.Equal(HttpStatusCode.Accepted, patched.StatusCode);
        }

        await using (var apart = await Storage.OpenForCollectionAsync(registry))
        {
            await new Airlock.Content.GarbageCollector(apart, TimeSpan.Zero, NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        }

        var report = await GetJsonAsync(registry.Client, "/api/v1/storage");

        Assert.True(report.GetProperty("current").GetProperty("bytes").GetInt64() >= 4096, report.ToString());
        Assert.Equal(1, report.GetProperty("repositories").GetInt32());
        Assert.NotEmpty(report.GetProperty("samples").EnumerateArray());
        var collection = Assert.Single(report.GetProperty("collections").EnumerateArray());
        Assert.Equal(3, collection.GetProperty("markedBlobs").GetInt32());
        var upload = Assert.Single(report.GetProperty("uploads").EnumerateArray());
        Assert.Equal("app", upload.GetProperty("repository").GetString());
        Assert.Equal(777, upload.GetProperty("bytes").GetInt64());
        Assert.True(upload.GetProperty("startedAt").GetDateTimeOffset() <= upload.GetProperty("lastActivity").GetDateTimeOffset(), upload.ToString());
    }

    [Fact]
    public async Task The_cluster_page_has_data_only_when_a_cluster_view_is_composed_in()
    {
        await using (var alone = await StartAsync())
        {
            using var none = await alone.Client.GetAsync("/api/v1/cluster");
            Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
            Assert.False((await GetJsonAsync(alone.Client, "/api/v1")).GetProperty("features").GetProperty("cluster").GetBoolean());
        }

        var view = new FixedCluster(new ClusterSnapshot([new ClusterNode("node-1", "10.0.0.1", "agent", null, new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero), ["app:1"])], 0.75));
        await using var clustered = await StartAsync(o => o with { Cluster = view });
        var snapshot = await GetJsonAsync(clustered.Client, "/api/v1/cluster");
        Assert.Equal("node-1", snapshot.GetProperty("nodes")[0].GetProperty("name").GetString());
        Assert.Equal(0.75, snapshot.GetProperty("peerHitRatio").GetDouble());
        Assert.True((await GetJsonAsync(clustered.Client, "/api/v1")).GetProperty("features").GetProperty("cluster").GetBoolean());
    }

    [Theory]
    [InlineData("/api/v1/repositories?sort=colour", "sort=\"colour\"")]
    [InlineData("/api/v1/repositories?order=up", "order=\"up\"")]
    [InlineData("/api/v1/repositories?limit=0", "limit=\"0\"")]
    [InlineData("/api/v1/repositories?limit=many", "limit=\"many\"")]
    [InlineData("/api/v1/repositories?sort=size&cursor=x", "cursor \"x\"")]
    [InlineData("/api/v1/repositories/UPPER", "\"UPPER\" is not a valid repository name")]
    public async Task Bad_requests_are_answered_with_what_is_wrong(string path, string detail)
    {
        await using var registry = await StartAsync();
        using var response = await registry.Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(detail, (await TestRegistry.ErrorOf(response)).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_write_through_the_registry_shows_in_the_list_at_once()
    {
        await using var registry = await StartAsync();
        await registry.PushImageAsync("app", "1");
        Assert.Equal(1, (await GetJsonAsync(registry.Client, "/api/v1/repositories")).GetProperty("repositories")[0].GetProperty("tags").GetInt32());

        await registry.PushImageAsync("app", "2");

        Assert.Equal(2, (await GetJsonAsync(registry.Client, "/api/v1/repositories")).GetProperty("repositories")[0].GetProperty("tags").GetInt32());
    }

    private static async Task<byte[]> PushConfiguredImageAsync(TestRegistry registry, string repository, string architecture, string created, string? tag = null)
    {
        var config = Encoding.UTF8.GetBytes($$$"""
            {"architecture":"{{{architecture}}}","os":"linux","created":"{{{created}}}","config":{"Labels":{"org.example.team":"team-a"}},
             "rootfs":{"type":"layers","diff_ids":[]},"history":[{"created":"{{{created}}}","created_by":"/bin/sh -c echo {{{architecture}}}"}]}
            """);
        var layer = new byte[1234];
        layer[0] = (byte)architecture[1];
        await registry.PushBlobOkAsync(repository, config);
        await registry.PushBlobOkAsync(repository, layer);
        var manifest = TestImage.BuildManifest(MediaTypes.OciManifest, MediaTypes.OciConfig, config, MediaTypes.OciLayerGzip, layer);
        using var put = await registry.PutManifestAsync(repository, tag ?? Digest.Sha256(manifest).ToString(), manifest);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        return manifest;
    }

    private RegistryAuthentication Authentication(bool useTokens)
    {
        var htpasswd = Path.Combine(_directory, "htpasswd");
        File.WriteAllLines(htpasswd, [$"admin:{BCrypt.Net.BCrypt.HashPassword("admin-secret", 4)}", $"alice:{BCrypt.Net.BCrypt.HashPassword("alice-secret", 4)}"]);
        var access = Path.Combine(_directory, "access.yaml");
        File.WriteAllText(access, """
            access:
              - users: [alice]
                repositories: ["team-a/*"]
                actions: [pull, push]
              - users: [admin]
                repositories: ["*"]
                actions: ["*"]
            """);
        return RegistryAuthentication.Create(new RegistryAuthOptions
        {
            HtpasswdPath = htpasswd,
            AccessPath = access,
            UseTokens = useTokens,
            TokenKeyPath = Path.Combine(_directory, "token.pem"),
        }, TimeProvider.System);
    }

    private static void Authorize(HttpClient client, string user) =>
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{user}-secret")));

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient client, string json) =>
        client.PostAsync("/api/v1/bundles", new StringContent(json, Encoding.UTF8, "application/json"));

    private static List<string?> Names(JsonElement page) => [.. page.GetProperty("repositories").EnumerateArray().Select(r => r.GetProperty("name").GetString())];

    /// <summary>Lets everyone in and lets them pull what <paramref name="pullable"/> says; records which repositories it was asked about.</summary>
    private sealed class CountingAccess(Func<string, bool> pullable) : IAccessController
    {
        public List<string> Asked { get; } = [];

        public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, IReadOnlyList<AccessRequest> requested, CancellationToken cancellationToken) =>
            ValueTask.FromResult(AccessDecision.Allow("tester"));

        public IReadOnlyList<string> Grant(string? user, AccessRequest request)
        {
            lock (Asked)
            {
                Asked.Add(request.Name);
            }

            return pullable(request.Name) ? request.Actions : [];
        }
    }

    private sealed class FixedCluster(ClusterSnapshot snapshot) : IClusterView
    {
        public ValueTask<ClusterSnapshot> SnapshotAsync(CancellationToken cancellationToken) => ValueTask.FromResult(snapshot);
    }
}

/// <summary>Every case of <see cref="ConsoleApiTests"/> against blobs in S3 and metadata in etcd (the run's radosgw and etcd).</summary>
[Collection(CephEtcdCollection.Name)]
public sealed class ConsoleApiOnS3Tests(CephEtcd engines) : ConsoleApiTests
{
    internal override TestStorage Storage { get; } = TestStorage.S3(engines);
}

/// <summary>Every case of <see cref="ConsoleApiTests"/> against blobs in S3 and metadata in the data directory (a single replica, no etcd).</summary>
[Collection(CephEtcdCollection.Name)]
public sealed class ConsoleApiOnS3LocalTests(CephEtcd engines) : ConsoleApiTests
{
    internal override TestStorage Storage { get; } = TestStorage.S3Local(engines);
}
