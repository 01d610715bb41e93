using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Airlock.Oci;
using Airlock.Remote;
using Microsoft.AspNetCore.Http;

namespace Airlock.Tests.Remote;

public sealed class AuthTests
{
    [Fact]
    public async Task Basic_auth_against_distribution_with_htpasswd_works_with_the_right_credentials()
    {
        await using var registry = await DistributionRegistry.StartAsync("alice", "s3cret");
        var options = new RemoteOptions { Credentials = StaticCredentialSource.FromUserPass("alice:s3cret") };
        using var client = new RegistryClient(options);
        var repo = ImageReference.Parse($"{registry.Host}/private/app");
        var image = TestImage.Create(layers: 1, layerSize: 1000);
        foreach (var (descriptor, content) in image.Blobs)
        {
            await client.PushBlobAsync(repo, descriptor, new MemoryStream(content), null, default);
        }

        await client.PushManifestAsync(repo, image.Manifest.MediaType, image.ManifestBytes, "1", default);
        Assert.Equal(image.Manifest.Digest, (await client.ResolveAsync(repo, "1", default)).Digest);
    }

    [Fact]
    public async Task Wrong_or_missing_credentials_fail_with_UNAUTHORIZED_naming_the_registry()
    {
        await using var registry = await DistributionRegistry.StartAsync("alice", "s3cret");
        var repo = ImageReference.Parse($"{registry.Host}/private/app");
        using var wrong = new RegistryClient(new RemoteOptions { Credentials = StaticCredentialSource.FromUserPass("alice:wrong") });
        var ex = await Assert.ThrowsAsync<RegistryException>(() => wrong.ResolveAsync(repo, "1", default));
        Assert.Equal(HttpStatusCode.Unauthorized, ex.StatusCode);
        Assert.Equal("UNAUTHORIZED", ex.Code);
        Assert.Contains(registry.Host, ex.Message, StringComparison.Ordinal);
        // Which credentials, so the fix is clear: these were sent and refused.
        Assert.EndsWith($"{registry.Host} rejected the credentials for alice", ex.Message, StringComparison.Ordinal);

        using var anonymous = new RegistryClient(new RemoteOptions());
        var none = await Assert.ThrowsAsync<RegistryException>(() => anonymous.ListTagsAsync(repo, default));
        Assert.Equal("UNAUTHORIZED", none.Code);
        // None were configured: say where they go.
        Assert.EndsWith($"no credentials for {registry.Host}: add configs.{registry.Host}.auth in registries.yaml or --creds", none.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bearer_tokens_are_fetched_with_the_challenge_scope_and_credentials_then_cached_per_scope_until_expiry()
    {
        var tokenRequests = new ConcurrentQueue<(string? Scope, string? Service, string? Authorization)>();
        var issued = 0;
        var validTokens = new ConcurrentDictionary<string, string>();
        TestHttpServer? server = null;
        server = await TestHttpServer.StartAsync(async context =>
        {
            var path = context.Request.Path.Value!;
            if (path == "/token")
            {
                var scopes = context.Request.Query["scope"].ToArray();
                tokenRequests.Enqueue((string.Join(' ', scopes), context.Request.Query["service"], context.Request.Headers.Authorization));
                if (context.Request.Headers.Authorization != "Basic " + Convert.ToBase64String("bob:pw"u8.ToArray()))
                {
                    context.Response.StatusCode = 401;
                    await context.Response.WriteAsync("""{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}""");
                    return;
                }

                var token = "tok" + Interlocked.Increment(ref issued);
                validTokens[token] = string.Join(' ', scopes);
                // access_token (OAuth2 spelling) instead of token, as some servers answer.
                await context.Response.WriteAsync($$"""{"access_token":"{{token}}","expires_in":300}""");
                return;
            }

            var authorization = context.Request.Headers.Authorization.ToString();
            var scope = path.Contains("/other/", StringComparison.Ordinal) ? "repository:team/other:pull" : "repository:team/app:pull";
            if (!authorization.StartsWith("Bearer ", StringComparison.Ordinal) || !validTokens.TryGetValue(authorization[7..], out var granted)
                || !granted.Split(' ').Contains(scope))
            {
                context.Response.StatusCode = 401;
                context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"http://{server!.Host}/token\",service=\"test-registry\",scope=\"{scope}\"";
                return;
            }

            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("""{"name":"team/app","tags":["a","b"]}""");
        });
        await using (server)
        {
            var time = new InstantDelayTimeProvider();
            using var client = new RegistryClient(new RemoteOptions
            {
                Credentials = new StaticCredentialSource(new Dictionary<string, RegistryCredential> { [server.Host] = new("bob", "pw") }),
                TimeProvider = time,
                ResponseTimeout = Timeout.InfiniteTimeSpan,
            });
            var repo = ImageReference.Parse($"{server.Host}/team/app");

            Assert.Equal(["a", "b"], await client.ListTagsAsync(repo, default));
            var first = Assert.Single(tokenRequests);
            Assert.Equal("repository:team/app:pull", first.Scope);
            Assert.Equal("test-registry", first.Service);

            await client.ListTagsAsync(repo, default);
            Assert.Single(tokenRequests);

            // Another scope set gets its own token, fetched before the request once the challenge is known.
            await client.ListTagsAsync(ImageReference.Parse($"{server.Host}/team/other"), default);
            Assert.Equal(2, tokenRequests.Count);
            Assert.Equal("repository:team/other:pull", tokenRequests.Last().Scope);

            time.Advance(TimeSpan.FromSeconds(301));
            await client.ListTagsAsync(repo, default);
            Assert.Equal(3, tokenRequests.Count);
        }
    }

    [Fact]
    public async Task A_token_server_refusing_the_credentials_gives_UNAUTHORIZED_naming_the_registry()
    {
        TestHttpServer? server = null;
        server = await TestHttpServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/token")
            {
                context.Response.StatusCode = 401;
                await context.Response.WriteAsync("""{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}""");
                return;
            }

            context.Response.StatusCode = 401;
            context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"http://{server!.Host}/token\",service=\"svc\"";
        });
        await using (server)
        {
            using var client = new RegistryClient(new RemoteOptions { Credentials = StaticCredentialSource.FromUserPass("bob:nope") });
            var ex = await Assert.ThrowsAsync<RegistryException>(() => client.ResolveAsync(ImageReference.Parse($"{server.Host}/team/app"), "1", default));
            Assert.Equal("UNAUTHORIZED", ex.Code);
            Assert.Contains(server.Host, ex.Message, StringComparison.Ordinal);
            Assert.Contains("bad credentials", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task An_identity_token_is_exchanged_with_an_OAuth2_refresh_token_grant()
    {
        var forms = new ConcurrentQueue<Dictionary<string, string>>();
        TestHttpServer? server = null;
        server = await TestHttpServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/token")
            {
                Assert.Equal("POST", context.Request.Method);
                var form = await context.Request.ReadFormAsync();
                forms.Enqueue(form.ToDictionary(f => f.Key, f => f.Value.ToString()));
                await context.Response.WriteAsync("""{"access_token":"oauth","expires_in":60}""");
                return;
            }

            if (context.Request.Headers.Authorization != "Bearer oauth")
            {
                context.Response.StatusCode = 401;
                context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"http://{server!.Host}/token\",service=\"svc\",scope=\"repository:team/app:pull\"";
                return;
            }

            await context.Response.WriteAsync("""{"name":"team/app","tags":["x"]}""");
        });
        await using (server)
        {
            var credentials = new StaticCredentialSource(new Dictionary<string, RegistryCredential>
            {
                [server.Host] = new(null, null, IdentityToken: "refresh-me"),
            });
            using var client = new RegistryClient(new RemoteOptions { Credentials = credentials });
            Assert.Equal(["x"], await client.ListTagsAsync(ImageReference.Parse($"{server.Host}/team/app"), default));
            var form = Assert.Single(forms);
            Assert.Equal("refresh_token", form["grant_type"]);
            Assert.Equal("refresh-me", form["refresh_token"]);
            Assert.Equal("svc", form["service"]);
            Assert.Equal("repository:team/app:pull", form["scope"]);
        }
    }

    [Fact]
    public async Task Parallel_requests_that_meet_the_same_challenge_share_one_token_fetch()
    {
        var fetches = 0;
        TestHttpServer? server = null;
        server = await TestHttpServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/token")
            {
                Interlocked.Increment(ref fetches);
                await Task.Delay(100);
                await context.Response.WriteAsync("""{"token":"t","expires_in":300}""");
                return;
            }

            if (context.Request.Headers.Authorization != "Bearer t")
            {
                context.Response.StatusCode = 401;
                context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"http://{server!.Host}/token\",service=\"svc\"";
                return;
            }

            await context.Response.WriteAsync("""{"name":"team/app","tags":["x"]}""");
        });
        await using (server)
        {
            using var client = new RegistryClient(new RemoteOptions());
            var repo = ImageReference.Parse($"{server.Host}/team/app");
            await client.ListTagsAsync(repo, default);
            fetches = 0;
            var other = ImageReference.Parse($"{server.Host}/team/other");
            await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => client.ListTagsAsync(other, default)));
            Assert.Equal(1, fetches);
        }
    }

    [Fact]
    public async Task Pushing_with_a_mount_asks_for_push_on_the_target_and_pull_on_the_source()
    {
        var scopes = new ConcurrentQueue<string>();
        TestHttpServer? server = null;
        server = await TestHttpServer.StartAsync(async context =>
        {
            if (context.Request.Path == "/token")
            {
                scopes.Enqueue(string.Join(' ', context.Request.Query["scope"].ToArray()));
                await context.Response.WriteAsync("""{"token":"t"}""");
                return;
            }

            if (context.Request.Headers.Authorization != "Bearer t")
            {
                context.Response.StatusCode = 401;
                context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"http://{server!.Host}/token\",service=\"svc\",scope=\"repository:dst/app:pull,push\"";
                return;
            }

            context.Response.StatusCode = 201;
        });
        await using (server)
        {
            using var client = new RegistryClient(new RemoteOptions());
            var blob = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256("x"u8), Size = 1 };
            var result = await client.PushBlobAsync(ImageReference.Parse($"{server.Host}/dst/app"), blob, new MemoryStream(Encoding.UTF8.GetBytes("x")), "src/app", default);
            Assert.Equal(BlobPushResult.Mounted, result);
            var requested = Assert.Single(scopes).Split(' ');
            Assert.Equal(["repository:dst/app:pull,push", "repository:src/app:pull"], requested.Order(StringComparer.Ordinal));
        }
    }
}
