using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Airlock.Content;
using Airlock.Oci;
using Airlock.Registry;
using Airlock.Registry.Auth;
using Airlock.Registry.PullThrough;
using Airlock.Remote;
using Airlock.Tests.Registry.Auth;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Registry;

/// <summary>
/// "A pull-through for a private upstream never serves its content to a client that has not authenticated to
/// Airlock": every read path an anonymous client has (catalog, tags, manifests by tag, digest and fallback tag,
/// blobs whole and ranged, referrers; GET and HEAD; ns and path prefix), with a real upstream that needs
/// credentials, beside a public upstream that shares a layer with it — before and after a restart with no
/// <c>--proxy</c> at all.
/// </summary>
public sealed class PullThroughPrivacyTests
{
    private const string PrivateRegistry = "private.example";
    private const string PublicRegistry = "public.example";

    [Fact]
    public async Task Anonymous_clients_get_401_on_every_read_of_a_private_upstreams_cache_and_never_see_its_names_even_after_a_restart_without_proxy()
    {
        await using var world = await World.StartAsync();
        var dataDirectory = Directory.CreateTempSubdirectory("airlock-proxy-private-").FullName;
        try
        {
            var cache = await world.StartCacheAsync(dataDirectory, withProxy: true);
            try
            {
                // Anonymous, cold: refused before anything is fetched from the private upstream.
                await AssertAllReadsRefusedAsync(cache, world.PrivateImage, ns: true);
                Assert.False(Directory.Exists(Path.Combine(dataDirectory, "registry", "repositories", PrivateRegistry)));

                // Authenticated: pulls through both forms.
                SignIn(cache);
                await AssertPullsAsync(cache, "secret/app", "1", world.PrivateImage, PrivateRegistry);
                await AssertPullsAsync(cache, $"{PrivateRegistry}/secret/app", "1", world.PrivateImage, ns: null);
                Assert.Contains($"{PrivateRegistry}/secret/app", await CatalogAsync(cache));

                // Anonymous, warm: still refused, and the name is not listed.
                SignOut(cache);
                await AssertAllReadsRefusedAsync(cache, world.PrivateImage, ns: true);
                await AssertAllReadsRefusedAsync(cache, world.PrivateImage, ns: false);
                Assert.DoesNotContain(await CatalogAsync(cache), r => r.StartsWith(PrivateRegistry, StringComparison.Ordinal));

                // The public upstream's image shares the config and layer blobs already cached for the private
                // one: an anonymous client gets them through the public repository, which links them once its
                // own upstream confirmed it has them. (A client gets a blob's verified tail while the store
                // still commits it, so wait for the commit to make this the shared-blob case.)
                await WaitStoredAsync(cache, world.PrivateImage.LayerDigest);
                await WaitStoredAsync(cache, world.PrivateImage.ConfigDigest);
                await AssertPullsAsync(cache, "public/app", "1", world.PublicImage, PublicRegistry);
                Assert.Equal([$"{PublicRegistry}/public/app"], await CatalogAsync(cache));
            }
            finally
            {
                await cache.StopKeepingDataAsync();
            }

            Assert.True(File.Exists(Path.Combine(dataDirectory, "registry", "repositories", PrivateRegistry, "secret", "app", "_authenticated_only")));

            // Restarted without --proxy: the cached repositories are plain local ones now, and the store's mark
            // still keeps the private one from anonymous clients.
            cache = await world.StartCacheAsync(dataDirectory, withProxy: false);
            try
            {
                await AssertAllReadsRefusedAsync(cache, world.PrivateImage, ns: false);
                Assert.Equal([$"{PublicRegistry}/public/app"], await CatalogAsync(cache));
                await AssertPullsAsync(cache, $"{PublicRegistry}/public/app", "1", world.PublicImage, ns: null);

                SignIn(cache);
                await AssertPullsAsync(cache, $"{PrivateRegistry}/secret/app", "1", world.PrivateImage, ns: null);
                Assert.Contains($"{PrivateRegistry}/secret/app", await CatalogAsync(cache));
            }
            finally
            {
                await cache.StopKeepingDataAsync();
            }

            // Without authentication the registry would serve that content to anyone: it refuses to start.
            var refused = await Assert.ThrowsAsync<ArgumentException>(() => TestRegistry.StartAsync(dataDirectory: dataDirectory));
            Assert.Contains($"{PrivateRegistry}/secret/app", refused.Message, StringComparison.Ordinal);
            Assert.Contains("--htpasswd", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task A_blob_of_a_private_upstream_is_not_readable_through_a_public_repository_whose_upstream_lacks_it()
    {
        await using var world = await World.StartAsync();
        var dataDirectory = Directory.CreateTempSubdirectory("airlock-proxy-private-").FullName;
        try
        {
            var cache = await world.StartCacheAsync(dataDirectory, withProxy: true);
            try
            {
                await CachePrivateImageAsync(cache, world);
                SignOut(cache);

                // Stored, but only for the private repository; the public upstream has no such blob in that repository.
                using var response = await cache.Client.GetAsync($"/v2/public/other/blobs/{world.PrivateOnlyLayer}?ns={PublicRegistry}");
                await TestRegistry.AssertError(response, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
            }
            finally
            {
                await cache.StopKeepingDataAsync();
            }
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task A_blob_cached_for_a_private_upstream_is_not_mounted_into_a_public_repository_but_uploaded_as_usual()
    {
        await using var world = await World.StartAsync();
        var dataDirectory = Directory.CreateTempSubdirectory("airlock-proxy-private-").FullName;
        try
        {
            var cache = await world.StartCacheAsync(dataDirectory, withProxy: true);
            try
            {
                await CachePrivateImageAsync(cache, world);

                // A user who may read the cache and push elsewhere asks to mount its blob into a public repository:
                // the registry opens an ordinary upload instead (202 with a Location), as the spec allows.
                using var mount = await cache.Client.PostAsync($"/v2/mine/app/blobs/uploads/?mount={world.PrivateOnlyLayer}&from={PrivateRegistry}/secret/app", null);
                Assert.Equal(HttpStatusCode.Accepted, mount.StatusCode);
                var location = mount.Headers.Location!.OriginalString;
                Assert.StartsWith("/v2/mine/app/blobs/uploads/", location, StringComparison.Ordinal);

                SignOut(cache);
                using (var anonymous = await cache.Client.GetAsync($"/v2/mine/app/blobs/{world.PrivateOnlyLayer}"))
                {
                    await TestRegistry.AssertError(anonymous, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
                }

                // Uploading content is proof of having it: that upload completes like any other.
                SignIn(cache);
                var content = Encoding.UTF8.GetBytes("a layer of my own");
                using var put = await cache.Client.PutAsync($"{location}?digest={Digest.Sha256(content)}", new ByteArrayContent(content));
                Assert.Equal(HttpStatusCode.Created, put.StatusCode);

                // Between two repositories an anonymous client may read, mounting still links without an upload.
                using var publicMount = await cache.Client.PostAsync($"/v2/mine/other/blobs/uploads/?mount={Digest.Sha256(content)}&from=mine/app", null);
                Assert.Equal(HttpStatusCode.Created, publicMount.StatusCode);
            }
            finally
            {
                await cache.StopKeepingDataAsync();
            }

            // After a restart without --proxy the store's mark still keeps the content where it was.
            cache = await world.StartCacheAsync(dataDirectory, withProxy: false);
            try
            {
                SignIn(cache);
                using var mount = await cache.Client.PostAsync($"/v2/mine/app/blobs/uploads/?mount={world.PrivateOnlyLayer}&from={PrivateRegistry}/secret/app", null);
                Assert.Equal(HttpStatusCode.Accepted, mount.StatusCode);
                SignOut(cache);
                using var anonymous = await cache.Client.GetAsync($"/v2/mine/app/blobs/{world.PrivateOnlyLayer}");
                await TestRegistry.AssertError(anonymous, HttpStatusCode.NotFound, "BLOB_UNKNOWN");
            }
            finally
            {
                await cache.StopKeepingDataAsync();
            }
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    private static async Task AssertAllReadsRefusedAsync(TestRegistry cache, TestImage image, bool ns)
    {
        var name = ns ? "secret/app" : $"{PrivateRegistry}/secret/app";
        var query = ns ? $"?ns={PrivateRegistry}" : string.Empty;
        var fallbackTag = image.ManifestDigest.ToString().Replace(':', '-');
        var reads = new List<(HttpMethod Method, string Path, RangeHeaderValue? Range)>
        {
            (HttpMethod.Get, $"/v2/{name}/manifests/1", null),
            (HttpMethod.Head, $"/v2/{name}/manifests/1", null),
            (HttpMethod.Get, $"/v2/{name}/manifests/{image.ManifestDigest}", null),
            (HttpMethod.Head, $"/v2/{name}/manifests/{image.ManifestDigest}", null),
            (HttpMethod.Get, $"/v2/{name}/manifests/{fallbackTag}", null),
            (HttpMethod.Get, $"/v2/{name}/blobs/{image.LayerDigest}", null),
            (HttpMethod.Head, $"/v2/{name}/blobs/{image.LayerDigest}", null),
            (HttpMethod.Get, $"/v2/{name}/blobs/{image.LayerDigest}", new RangeHeaderValue(0, 3)),
            (HttpMethod.Get, $"/v2/{name}/blobs/{image.ConfigDigest}", null),
            (HttpMethod.Get, $"/v2/{name}/tags/list", null),
            (HttpMethod.Get, $"/v2/{name}/referrers/{image.ManifestDigest}", null),
        };
        foreach (var (method, path, range) in reads)
        {
            using var request = new HttpRequestMessage(method, path + query);
            request.Headers.Range = range;
            using var response = await cache.Client.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path}{query} (range {range}) answered {(int)response.StatusCode}, not 401");
            Assert.NotEmpty(response.Headers.WwwAuthenticate);
            if (method == HttpMethod.Get)
            {
                Assert.Equal("UNAUTHORIZED", (await TestRegistry.ErrorOf(response)).Code);
            }
        }
    }

    /// <summary>Signed in, pulls the private image and the private-only layer through the cache and waits until they are stored.</summary>
    private static async Task CachePrivateImageAsync(TestRegistry cache, World world)
    {
        SignIn(cache);
        await AssertPullsAsync(cache, "secret/app", "1", world.PrivateImage, PrivateRegistry);
        using (var privately = await cache.Client.GetAsync($"/v2/secret/app/blobs/{world.PrivateOnlyLayer}?ns={PrivateRegistry}"))
        {
            Assert.Equal(HttpStatusCode.OK, privately.StatusCode);
        }

        await WaitStoredAsync(cache, world.PrivateOnlyLayer);
    }

    private static async Task WaitStoredAsync(TestRegistry cache, Digest digest)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await cache.Server.Storage.Blobs.SizeAsync(digest, CancellationToken.None) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{digest} was not stored");
            await Task.Delay(20);
        }
    }

    private static void SignIn(TestRegistry cache) =>
        cache.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:wonderland")));

    private static void SignOut(TestRegistry cache) => cache.Client.DefaultRequestHeaders.Authorization = null;

    private static async Task AssertPullsAsync(TestRegistry cache, string repository, string tag, TestImage image, string? ns)
    {
        var query = ns is null ? string.Empty : "?ns=" + ns;
        using var manifest = await cache.Client.GetAsync($"/v2/{repository}/manifests/{tag}{query}");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal(image.Manifest, await manifest.Content.ReadAsByteArrayAsync());
        foreach (var (digest, content) in new[] { (image.ConfigDigest, image.Config), (image.LayerDigest, image.Layer) })
        {
            using var blob = await cache.Client.GetAsync($"/v2/{repository}/blobs/{digest}{query}");
            Assert.True(blob.StatusCode == HttpStatusCode.OK, $"{repository} blob {digest}: {(int)blob.StatusCode}");
            Assert.Equal(content, await blob.Content.ReadAsByteArrayAsync());
        }
    }

    private static async Task<List<string>> CatalogAsync(TestRegistry cache)
    {
        using var json = JsonDocument.Parse(await cache.Client.GetStringAsync("/v2/_catalog"));
        return json.RootElement.GetProperty("repositories").EnumerateArray().Select(e => e.GetString()!).ToList();
    }

    /// <summary>
    /// A private upstream (Basic auth, no anonymous access; the cache has credentials for it) and a public one
    /// whose image shares the private image's layer, plus the cache's htpasswd (alice).
    /// </summary>
    private sealed class World : IAsyncDisposable
    {
        private World(TestRegistry privateUpstream, TestRegistry publicUpstream, string htpasswd, TestImage privateImage, TestImage publicImage, Digest privateOnlyLayer)
        {
            PrivateUpstream = privateUpstream;
            PublicUpstream = publicUpstream;
            Htpasswd = htpasswd;
            PrivateImage = privateImage;
            PublicImage = publicImage;
            PrivateOnlyLayer = privateOnlyLayer;
        }

        public TestRegistry PrivateUpstream { get; }

        public TestRegistry PublicUpstream { get; }

        public string Htpasswd { get; }

        public TestImage PrivateImage { get; }

        public TestImage PublicImage { get; }

        public Digest PrivateOnlyLayer { get; }

        public static async Task<World> StartAsync()
        {
            var htpasswd = Path.Combine(Directory.CreateTempSubdirectory("airlock-proxy-auth-").FullName, "htpasswd");
            await File.WriteAllLinesAsync(htpasswd, [HtpasswdFileTests.Entry("alice", "wonderland"), HtpasswdFileTests.Entry("cache", "secret")]);
            var privateUpstream = await TestRegistry.StartAsync(o => o with
            {
                AccessController = new BasicAccessController(new HtpasswdFile(htpasswd, TimeProvider.System), AccessPolicy.Create(anonymousPull: false)),
            });
            var layer = Encoding.UTF8.GetBytes("a layer both upstreams have");
            privateUpstream.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("cache:secret")));
            var privateImage = await privateUpstream.PushImageAsync("secret/app", "1", layer);
            var privateOnly = TestImage.Create(Encoding.UTF8.GetBytes("only the private upstream has this"));
            await privateUpstream.PushBlobOkAsync("secret/app", privateOnly.Layer);
            privateUpstream.Client.DefaultRequestHeaders.Authorization = null;

            var publicUpstream = await TestRegistry.StartAsync();
            var publicImage = await publicUpstream.PushImageAsync("public/app", "1", layer, MediaTypes.DockerManifest);
            return new World(privateUpstream, publicUpstream, htpasswd, privateImage, publicImage, privateOnly.LayerDigest);
        }

        /// <summary>The cache, with anonymous pull; with or without the --proxy settings.</summary>
        public Task<TestRegistry> StartCacheAsync(string dataDirectory, bool withProxy)
        {
            var pullThrough = withProxy
                ? new PullThroughOptions
                {
                    Upstreams =
                    [
                        new PullThroughUpstream(PrivateRegistry, PrivateUpstream.Server.Address),
                        new PullThroughUpstream(PublicRegistry, PublicUpstream.Server.Address),
                    ],
                    Remote = new RemoteOptions
                    {
                        Credentials = new StaticCredentialSource(new Dictionary<string, RegistryCredential>
                        {
                            [PrivateUpstream.Server.Address.Authority] = new("cache", "secret"),
                        }),
                    },
                }
                : null;
            return TestRegistry.StartComposedAsync(
                settings => settings with
                {
                    Server = settings.Server with { PullThrough = pullThrough },
                    Auth = new RegistryAuthOptions { HtpasswdPath = Htpasswd, AnonymousPull = true },
                },
                dataDirectory);
        }

        public async ValueTask DisposeAsync()
        {
            await PrivateUpstream.DisposeAsync();
            await PublicUpstream.DisposeAsync();
            Directory.Delete(Path.GetDirectoryName(Htpasswd)!, recursive: true);
        }
    }
}
