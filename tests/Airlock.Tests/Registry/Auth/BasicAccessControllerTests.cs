using System.Net;
using Airlock.Registry.Auth;

namespace Airlock.Tests.Registry.Auth;

public sealed class BasicAccessControllerTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-basic-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private async Task<AuthTestServer> StartAsync(bool anonymousPull, string? accessYaml = null)
    {
        var htpasswd = Path.Combine(_directory, "htpasswd");
        await File.WriteAllLinesAsync(htpasswd, [HtpasswdFileTests.Entry("alice", "wonderland"), HtpasswdFileTests.Entry("bob", "builder")]);
        var policy = accessYaml is null ? AccessPolicy.Create(anonymousPull) : AccessPolicy.Parse(accessYaml, "access.yaml", anonymousPull);
        return await AuthTestServer.StartAsync(new BasicAccessController(new HtpasswdFile(htpasswd, TimeProvider.System), policy));
    }

    [Fact]
    public async Task Requests_without_credentials_get_401_with_the_Basic_challenge()
    {
        await using var server = await StartAsync(anonymousPull: false);
        using var client = server.Client();

        foreach (var path in new[] { "/v2/", "/v2/library/alpine/manifests/latest", "/v2/_catalog" })
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Basic realm=\"Airlock Registry\"", response.Headers.WwwAuthenticate.ToString());
        }
    }

    [Fact]
    public async Task Wrong_password_unknown_user_and_garbled_header_get_401()
    {
        await using var server = await StartAsync(anonymousPull: true);

        foreach (var client in new[] { server.Client("alice", "wrong"), server.Client("mallory", "wonderland") })
        {
            using (client)
            {
                using var response = await client.GetAsync("/v2/library/alpine/manifests/latest");
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
                Assert.Equal("invalid username or password", await response.Content.ReadAsStringAsync());
            }
        }

        using var garbled = server.Client();
        garbled.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Basic !!!not-base64");
        using var garbledResponse = await garbled.GetAsync("/v2/");
        Assert.Equal(HttpStatusCode.Unauthorized, garbledResponse.StatusCode);
    }

    [Fact]
    public async Task Right_credentials_allow_pull_push_delete_and_catalog()
    {
        await using var server = await StartAsync(anonymousPull: false);
        using var client = server.Client("alice", "wonderland");

        using var baseCheck = await client.GetAsync("/v2/");
        using var pull = await client.GetAsync("/v2/team-a/app/manifests/1.0");
        using var push = await client.PutAsync("/v2/team-a/app/manifests/1.0", new StringContent("{}"));
        using var delete = await client.DeleteAsync("/v2/team-a/app/manifests/1.0");
        using var catalog = await client.GetAsync("/v2/_catalog");

        Assert.All(new[] { baseCheck, pull, push, delete, catalog }, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal("alice", await pull.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Anonymous_pull_allows_pull_but_the_base_check_push_and_delete_challenge_for_credentials()
    {
        await using var server = await StartAsync(anonymousPull: true);
        using var anonymous = server.Client();

        using var baseCheck = await anonymous.GetAsync("/v2/");
        using var pull = await anonymous.GetAsync("/v2/library/alpine/blobs/sha256:abc");
        using var push = await anonymous.PostAsync("/v2/library/alpine/blobs/uploads/", null);
        using var delete = await anonymous.DeleteAsync("/v2/library/alpine/manifests/sha256:abc");

        // The base check challenges so that clients holding credentials learn to send them.
        Assert.Equal(HttpStatusCode.Unauthorized, baseCheck.StatusCode);
        Assert.Equal("Basic realm=\"Airlock Registry\"", baseCheck.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
        Assert.Equal("(anonymous)", await pull.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, push.StatusCode);
        Assert.Equal("Basic realm=\"Airlock Registry\"", push.Headers.WwwAuthenticate.ToString());
        Assert.Equal(HttpStatusCode.Unauthorized, delete.StatusCode);

        using var alice = server.Client("alice", "wonderland");
        using var authenticatedPush = await alice.PostAsync("/v2/library/alpine/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.OK, authenticatedPush.StatusCode);
    }

    [Fact]
    public async Task Empty_basic_credentials_as_skopeo_sends_them_are_anonymous_not_a_failed_login()
    {
        await using var server = await StartAsync(anonymousPull: true);
        using var empty = server.Client("", "");

        using var pull = await empty.GetAsync("/v2/library/alpine/blobs/sha256:abc");
        using var push = await empty.PostAsync("/v2/library/alpine/blobs/uploads/", null);

        Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
        Assert.Equal("(anonymous)", await pull.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, push.StatusCode);
    }

    [Fact]
    public async Task Access_file_limits_alice_to_team_a_and_gives_others_pull_only()
    {
        const string Yaml = """
            access:
              - users: [alice]
                repositories: ["team-a/*"]
                actions: [pull, push]
              - users: ["*"]
                repositories: ["*"]
                actions: [pull]
            """;
        await using var server = await StartAsync(anonymousPull: false, Yaml);
        using var alice = server.Client("alice", "wonderland");
        using var bob = server.Client("bob", "builder");

        using var alicePushA = await alice.PutAsync("/v2/team-a/x/manifests/1", new StringContent("{}"));
        using var alicePushB = await alice.PutAsync("/v2/team-b/x/manifests/1", new StringContent("{}"));
        using var aliceDeleteA = await alice.DeleteAsync("/v2/team-a/x/manifests/1");
        using var alicePullB = await alice.GetAsync("/v2/team-b/x/manifests/1");
        using var bobPullA = await bob.GetAsync("/v2/team-a/x/manifests/1");
        using var bobPushA = await bob.PutAsync("/v2/team-a/x/manifests/1", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.OK, alicePushA.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, alicePushB.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, aliceDeleteA.StatusCode);
        // alice's first matching rule for team-b/x is the catch-all pull rule.
        Assert.Equal(HttpStatusCode.OK, alicePullB.StatusCode);
        Assert.Equal(HttpStatusCode.OK, bobPullA.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, bobPushA.StatusCode);
        Assert.Contains("push on repository team-a/x is not allowed for user bob", await bobPushA.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
