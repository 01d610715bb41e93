using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Airlock.Registry.Auth;

namespace Airlock.Tests.Registry.Auth;

public sealed class TokenAuthTests : IDisposable
{
    private const string AccessYaml = """
        access:
          - users: [alice]
            repositories: ["team-a/*"]
            actions: [pull, push]
          - users: ["*"]
            repositories: ["*"]
            actions: [pull]
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-token-").FullName;
    private readonly ManualTimeProvider _clock = new(DateTimeOffset.UtcNow);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string KeyPath => Path.Combine(_directory, "registry", "token", "key.pem");

    private async Task<AuthTestServer> StartAsync(bool anonymousPull = false, string? accessYaml = AccessYaml)
    {
        var htpasswd = Path.Combine(_directory, "htpasswd");
        await File.WriteAllLinesAsync(htpasswd, [HtpasswdFileTests.Entry("alice", "wonderland"), HtpasswdFileTests.Entry("bob", "builder")]);
        var users = new HtpasswdFile(htpasswd, _clock);
        var policy = accessYaml is null ? AccessPolicy.Create(anonymousPull) : AccessPolicy.Parse(accessYaml, "access.yaml", anonymousPull);
        var authority = TokenAuthority.LoadOrCreate(KeyPath, new TokenAuthOptions(), _clock);
        var endpoint = new TokenEndpoint(authority, users, policy);
        return await AuthTestServer.StartAsync(new TokenAccessController(authority, policy), app => app.MapRegistryTokenEndpoint(endpoint));
    }

    private static async Task<JsonElement> FetchTokenAsync(HttpClient client, string query, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await client.GetAsync(new Uri("/token?" + query, UriKind.Relative));
        Assert.Equal(expected, response.StatusCode);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.Clone();
    }

    private static JsonElement Claims(string jwt)
    {
        using var document = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1]));
        return document.RootElement.Clone();
    }

    private static HttpRequestMessage WithToken(HttpMethod method, string path, string token)
    {
        var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (method == HttpMethod.Put)
        {
            request.Content = new StringContent("{}");
        }

        return request;
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, string token)
    {
        using var request = WithToken(method, path, token);
        return await client.SendAsync(request);
    }

    [Fact]
    public async Task Requests_without_a_token_get_a_Bearer_challenge_naming_realm_service_and_scope()
    {
        await using var server = await StartAsync();
        using var client = server.Client();

        using var baseCheck = await client.GetAsync(new Uri("/v2/", UriKind.Relative));
        using var push = await client.PutAsync(new Uri("/v2/team-a/app/manifests/1", UriKind.Relative), new StringContent("{}"));

        var realm = new Uri(server.BaseAddress, "/token").ToString();
        Assert.Equal(HttpStatusCode.Unauthorized, baseCheck.StatusCode);
        Assert.Equal($"Bearer realm=\"{realm}\",service=\"airlock\"", baseCheck.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, push.StatusCode);
        Assert.Equal($"Bearer realm=\"{realm}\",service=\"airlock\",scope=\"repository:team-a/app:pull,push\"", push.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task Token_from_GET_with_Basic_credentials_is_a_signed_JWT_that_the_registry_accepts()
    {
        await using var server = await StartAsync();
        using var alice = server.Client("alice", "wonderland");

        var response = await FetchTokenAsync(alice, "service=airlock&scope=repository:team-a/app:pull,push");

        var token = response.GetProperty("token").GetString()!;
        Assert.Equal(token, response.GetProperty("access_token").GetString());
        Assert.Equal(900, response.GetProperty("expires_in").GetInt32());
        Assert.Equal(_clock.GetUtcNow().ToUnixTimeSeconds(), DateTimeOffset.Parse(response.GetProperty("issued_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeSeconds());
        using (var header = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(token.Split('.')[0])))
        {
            Assert.Equal("ES256", header.RootElement.GetProperty("alg").GetString());
        }

        var claims = Claims(token);
        Assert.Equal("airlock", claims.GetProperty("iss").GetString());
        Assert.Equal("alice", claims.GetProperty("sub").GetString());
        Assert.Equal("airlock", claims.GetProperty("aud").GetString());
        Assert.Equal(claims.GetProperty("iat").GetInt64() + 900, claims.GetProperty("exp").GetInt64());
        Assert.True(claims.GetProperty("nbf").GetInt64() <= claims.GetProperty("iat").GetInt64());
        Assert.NotEmpty(claims.GetProperty("jti").GetString()!);
        Assert.Equal("""[{"type":"repository","name":"team-a/app","actions":["pull","push"]}]""", claims.GetProperty("access").GetRawText());

        using var anonymous = server.Client();
        using var push = await SendAsync(anonymous, HttpMethod.Put, "/v2/team-a/app/manifests/1", token);
        using var pull = await SendAsync(anonymous, HttpMethod.Get, "/v2/team-a/app/manifests/1", token);
        using var baseCheck = await SendAsync(anonymous, HttpMethod.Get, "/v2/", token);
        Assert.Equal(HttpStatusCode.OK, push.StatusCode);
        Assert.Equal("alice", await push.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
        Assert.Equal(HttpStatusCode.OK, baseCheck.StatusCode);
    }

    [Fact]
    public async Task Several_scope_parameters_are_all_granted_and_space_separated_scopes_too()
    {
        await using var server = await StartAsync();
        using var alice = server.Client("alice", "wonderland");

        var response = await FetchTokenAsync(alice, "service=airlock&scope=repository:team-a/app:push,pull&scope=repository:team-a/base:pull%20repository:library/alpine:pull");

        Assert.Equal(
            """[{"type":"repository","name":"team-a/app","actions":["push","pull"]},{"type":"repository","name":"team-a/base","actions":["pull"]},{"type":"repository","name":"library/alpine","actions":["pull"]}]""",
            Claims(response.GetProperty("token").GetString()!).GetProperty("access").GetRawText());
    }

    [Fact]
    public async Task Expired_token_is_refused_with_a_new_challenge()
    {
        await using var server = await StartAsync();
        using var alice = server.Client("alice", "wonderland");
        var token = (await FetchTokenAsync(alice, "service=airlock&scope=repository:team-a/app:pull")).GetProperty("token").GetString()!;
        using var client = server.Client();

        _clock.Advance(TimeSpan.FromMinutes(15));
        using var stillValid = await SendAsync(client, HttpMethod.Get, "/v2/team-a/app/manifests/1", token);
        _clock.Advance(TimeSpan.FromMinutes(1));
        using var expired = await SendAsync(client, HttpMethod.Get, "/v2/team-a/app/manifests/1", token);

        Assert.Equal(HttpStatusCode.OK, stillValid.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        Assert.Equal("token has expired", await expired.Content.ReadAsStringAsync());
        Assert.Contains("scope=\"repository:team-a/app:pull\",error=\"invalid_token\"", expired.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tampered_forged_and_unsigned_tokens_are_refused()
    {
        await using var server = await StartAsync();
        using var bob = server.Client("bob", "builder");
        var token = (await FetchTokenAsync(bob, "service=airlock&scope=repository:team-a/app:pull")).GetProperty("token").GetString()!;
        var parts = token.Split('.');
        static string Encode(string json) => System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));
        var claims = Claims(token).GetRawText();
        var widened = claims.Replace("\"actions\":[\"pull\"]", "\"actions\":[\"pull\",\"push\"]", StringComparison.Ordinal);
        Assert.NotEqual(claims, widened);
        var signature = System.Buffers.Text.Base64Url.DecodeFromChars(parts[2]);
        signature[10] ^= 1;
        using var otherAuthority = TokenAuthority.LoadOrCreate(Path.Combine(_directory, "other.pem"), new TokenAuthOptions(), _clock);

        var rejected = new Dictionary<string, string>
        {
            ["flipped signature bit"] = $"{parts[0]}.{parts[1]}.{System.Buffers.Text.Base64Url.EncodeToString(signature)}",
            ["widened actions"] = $"{parts[0]}.{Encode(widened)}.{parts[2]}",
            ["alg none"] = $"{Encode("""{"typ":"JWT","alg":"none"}""")}.{Encode(widened)}.",
            ["other key"] = otherAuthority.Issue("bob", [AccessRequest.Repository("team-a/app", "pull", "push")]).Token,
            ["garbage"] = "not.a.token",
        };
        using var client = server.Client();
        foreach (var (what, forged) in rejected)
        {
            using var response = await SendAsync(client, HttpMethod.Get, "/v2/team-a/app/manifests/1", forged);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, what);
        }

        using var genuine = await SendAsync(client, HttpMethod.Get, "/v2/team-a/app/manifests/1", token);
        Assert.Equal(HttpStatusCode.OK, genuine.StatusCode);
    }

    [Fact]
    public async Task Token_for_another_service_is_refused()
    {
        await using var server = await StartAsync();
        using var elsewhere = TokenAuthority.LoadOrCreate(KeyPath, new TokenAuthOptions { Service = "other-registry" }, _clock);
        using var client = server.Client();

        using var response = await SendAsync(client, HttpMethod.Get, "/v2/team-a/app/manifests/1", elsewhere.Issue("alice", [AccessRequest.Repository("team-a/app", "pull")]).Token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("token is for another service", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Out_of_scope_actions_are_left_out_of_the_token_and_then_denied()
    {
        await using var server = await StartAsync();
        using var alice = server.Client("alice", "wonderland");

        var response = await FetchTokenAsync(alice, "service=airlock&scope=repository:team-b/x:pull,push&scope=repository:team-a/x:push,delete");
        var token = response.GetProperty("token").GetString()!;

        Assert.Equal(
            """[{"type":"repository","name":"team-b/x","actions":["pull"]},{"type":"repository","name":"team-a/x","actions":["push"]}]""",
            Claims(token).GetProperty("access").GetRawText());
        using var client = server.Client();
        using var pushB = await SendAsync(client, HttpMethod.Put, "/v2/team-b/x/manifests/1", token);
        using var pullB = await SendAsync(client, HttpMethod.Get, "/v2/team-b/x/manifests/1", token);
        Assert.Equal(HttpStatusCode.Forbidden, pushB.StatusCode);
        Assert.Equal("repository:team-b/x:pull,push is not allowed for user alice", await pushB.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, pullB.StatusCode);
    }

    [Fact]
    public async Task A_token_lacking_an_action_the_user_may_have_gets_an_insufficient_scope_challenge()
    {
        await using var server = await StartAsync();
        using var alice = server.Client("alice", "wonderland");
        var pullOnly = (await FetchTokenAsync(alice, "service=airlock&scope=repository:team-a/x:pull")).GetProperty("token").GetString()!;
        using var client = server.Client();

        using var push = await SendAsync(client, HttpMethod.Put, "/v2/team-a/x/manifests/1", pullOnly);
        using var other = await SendAsync(client, HttpMethod.Get, "/v2/team-a/y/manifests/1", pullOnly);

        Assert.Equal(HttpStatusCode.Unauthorized, push.StatusCode);
        Assert.EndsWith(",scope=\"repository:team-a/x:pull,push\",error=\"insufficient_scope\"", push.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, other.StatusCode);
        Assert.Contains("scope=\"repository:team-a/y:pull\"", other.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Catalog_scope_is_granted_only_to_users_who_may_pull_everything()
    {
        await using var server = await StartAsync(accessYaml: """
            access:
              - users: [alice]
                repositories: ["*"]
                actions: [pull]
              - users: [bob]
                repositories: ["team-b/*"]
                actions: ["*"]
            """);
        using var alice = server.Client("alice", "wonderland");
        using var bob = server.Client("bob", "builder");

        var aliceToken = (await FetchTokenAsync(alice, "service=airlock&scope=registry:catalog:*")).GetProperty("token").GetString()!;
        var bobToken = (await FetchTokenAsync(bob, "service=airlock&scope=registry:catalog:*")).GetProperty("token").GetString()!;

        Assert.Equal("""[{"type":"registry","name":"catalog","actions":["*"]}]""", Claims(aliceToken).GetProperty("access").GetRawText());
        Assert.Equal("[]", Claims(bobToken).GetProperty("access").GetRawText());
        using var client = server.Client();
        using var aliceCatalog = await SendAsync(client, HttpMethod.Get, "/v2/_catalog", aliceToken);
        using var bobCatalog = await SendAsync(client, HttpMethod.Get, "/v2/_catalog", bobToken);
        Assert.Equal(HttpStatusCode.OK, aliceCatalog.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, bobCatalog.StatusCode);
    }

    [Fact]
    public async Task Wrong_credentials_at_the_token_endpoint_get_401_and_no_token()
    {
        await using var server = await StartAsync();
        using var mallory = server.Client("alice", "guess");

        var response = await FetchTokenAsync(mallory, "service=airlock&scope=repository:team-a/x:pull", HttpStatusCode.Unauthorized);

        Assert.False(response.TryGetProperty("token", out _));
        Assert.Equal("UNAUTHORIZED", response.GetProperty("errors")[0].GetProperty("code").GetString());
    }

    [Fact]
    public async Task Unknown_service_and_malformed_scope_are_refused_with_400()
    {
        await using var server = await StartAsync();
        using var alice = server.Client("alice", "wonderland");

        var service = await FetchTokenAsync(alice, "service=elsewhere&scope=repository:team-a/x:pull", HttpStatusCode.BadRequest);
        var scope = await FetchTokenAsync(alice, "service=airlock&scope=team-a/x", HttpStatusCode.BadRequest);

        Assert.Contains("unknown service \"elsewhere\"", service.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        Assert.Contains("malformed scope \"team-a/x\"", scope.GetProperty("error_description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OAuth2_POST_with_password_grant_issues_a_token_like_containerd_expects()
    {
        await using var server = await StartAsync();
        using var client = server.Client();

        using var ok = await client.PostAsync(new Uri("/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = "alice",
            ["password"] = "wonderland",
            ["client_id"] = "containerd-client",
            ["service"] = "airlock",
            ["scope"] = "repository:team-a/x:pull,push repository:library/alpine:pull",
        }));
        using var wrong = await client.PostAsync(new Uri("/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = "alice",
            ["password"] = "guess",
            ["service"] = "airlock",
        }));
        using var refresh = await client.PostAsync(new Uri("/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["refresh_token"] = "x",
            ["service"] = "airlock",
        }));

        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using var body = JsonDocument.Parse(await ok.Content.ReadAsStringAsync());
        var token = body.RootElement.GetProperty("access_token").GetString()!;
        Assert.Equal("alice", Claims(token).GetProperty("sub").GetString());
        using var push = await SendAsync(client, HttpMethod.Put, "/v2/team-a/x/manifests/1", token);
        Assert.Equal(HttpStatusCode.OK, push.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, refresh.StatusCode);
    }

    [Fact]
    public async Task Anonymous_pull_gets_an_anonymous_pull_token_but_push_still_needs_credentials()
    {
        await using var server = await StartAsync(anonymousPull: true, accessYaml: null);
        using var client = server.Client();

        var response = await FetchTokenAsync(client, "service=airlock&scope=repository:library/alpine:pull,push");
        var token = response.GetProperty("token").GetString()!;

        Assert.Equal("", Claims(token).GetProperty("sub").GetString());
        Assert.Equal("""[{"type":"repository","name":"library/alpine","actions":["pull"]}]""", Claims(token).GetProperty("access").GetRawText());
        using var pull = await SendAsync(client, HttpMethod.Get, "/v2/library/alpine/manifests/latest", token);
        using var push = await SendAsync(client, HttpMethod.Put, "/v2/library/alpine/manifests/latest", token);
        using var withoutToken = await client.GetAsync(new Uri("/v2/library/alpine/manifests/latest", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, push.StatusCode);
        Assert.Contains("scope=\"repository:library/alpine:pull,push\"", push.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, withoutToken.StatusCode);
    }

    [Fact]
    public void Signing_key_is_created_once_with_mode_0600_and_reused_so_tokens_survive_a_restart()
    {
        string token;
        using (var first = TokenAuthority.LoadOrCreate(KeyPath, new TokenAuthOptions(), _clock))
        {
            token = first.Issue("alice", [AccessRequest.Repository("a", "pull")]).Token;
        }

        using var second = TokenAuthority.LoadOrCreate(KeyPath, new TokenAuthOptions(), _clock);

        Assert.True(second.TryValidate(token, out var claims, out var error), error);
        Assert.Equal("alice", claims.Subject);
        Assert.True(claims.Covers(AccessRequest.Repository("a", "pull")));
        Assert.False(claims.Covers(AccessRequest.Repository("a", "push")));
        Assert.True(OperatingSystem.IsLinux() && File.GetUnixFileMode(KeyPath) == (UnixFileMode.UserRead | UnixFileMode.UserWrite));
    }

    [Fact]
    public void A_corrupt_signing_key_is_an_error_naming_the_file_and_is_kept()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(KeyPath)!);
        File.WriteAllText(KeyPath, "garbage");

        var error = Assert.Throws<AuthConfigurationException>(() => TokenAuthority.LoadOrCreate(KeyPath, new TokenAuthOptions(), _clock));

        Assert.StartsWith($"{KeyPath}: cannot use token signing key", error.Message, StringComparison.Ordinal);
        Assert.Equal("garbage", File.ReadAllText(KeyPath));
    }

    [Theory]
    [InlineData("repository:library/alpine:pull", "repository", "library/alpine", "pull")]
    [InlineData("repository:team/app:push,pull", "repository", "team/app", "push|pull")]
    [InlineData("repository(plugin):vieux/sshfs:pull", "repository", "vieux/sshfs", "pull")]
    [InlineData("registry:catalog:*", "registry", "catalog", "*")]
    [InlineData("repository:mirror.lan:5000/app:pull", "repository", "mirror.lan:5000/app", "pull")]
    public void Scopes_parse_into_type_name_and_actions(string scope, string type, string name, string actions)
    {
        Assert.True(TokenEndpoint.TryParseScope(scope, out var request));
        Assert.Equal(type, request.Type);
        Assert.Equal(name, request.Name);
        Assert.Equal(actions.Split('|'), request.Actions);
    }

    [Theory]
    [InlineData("repository")]
    [InlineData("repository:alpine")]
    [InlineData("repository:alpine:")]
    [InlineData(":alpine:pull")]
    [InlineData("repository::pull")]
    public void Malformed_scopes_do_not_parse(string scope)
    {
        Assert.False(TokenEndpoint.TryParseScope(scope, out _));
    }
}
