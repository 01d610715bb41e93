using System.Net;
using Airlock.Registry.Auth;

namespace Airlock.Tests.Registry.Auth;

public sealed class RegistryAuthenticationTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-auth-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string Htpasswd(params string[] lines)
    {
        var path = Path.Combine(_directory, "htpasswd");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public async Task Without_htpasswd_everything_is_allowed()
    {
        using var auth = RegistryAuthentication.Create(new RegistryAuthOptions(), TimeProvider.System);
        await using var server = await AuthTestServer.StartAsync(auth.AccessController);
        using var client = server.Client();

        using var push = await client.PutAsync(new Uri("/v2/any/manifests/1", UriKind.Relative), new StringContent("{}"));

        Assert.Equal(HttpStatusCode.OK, push.StatusCode);
        Assert.Null(auth.TokenEndpoint);
    }

    [Fact]
    public void Flags_that_need_htpasswd_are_all_reported()
    {
        var error = Assert.Throws<AuthConfigurationException>(() => RegistryAuthentication.Create(
            new RegistryAuthOptions { AccessPath = "a.yaml", AnonymousPull = true, UseTokens = true }, TimeProvider.System));

        Assert.Equal(
            [
                "--access needs --htpasswd (without it the registry has no users and allows everything)",
                "--anonymous-pull needs --htpasswd (without it the registry has no users and allows everything)",
                "--auth token needs --htpasswd (without it the registry has no users and allows everything)",
            ],
            error.Problems);
    }

    [Fact]
    public void Problems_in_htpasswd_and_access_file_come_together()
    {
        var htpasswd = Htpasswd("alice:$apr1$abc$def");
        var access = Path.Combine(_directory, "access.yaml");
        File.WriteAllText(access, "access:\n  - users: [alice]\n    repositories: [\"*\"]\n    actions: [pul]\n");

        var error = Assert.Throws<AuthConfigurationException>(() => RegistryAuthentication.Create(
            new RegistryAuthOptions { HtpasswdPath = htpasswd, AccessPath = access }, TimeProvider.System));

        Assert.Equal(2, error.Problems.Count);
        Assert.StartsWith($"{htpasswd}:1: user \"alice\" has an MD5 (apr1) hash", error.Problems[0], StringComparison.Ordinal);
        Assert.Equal($"{access}:4: unknown action \"pul\" (expected pull, push, delete or \"*\")", error.Problems[1]);
    }

    [Fact]
    public async Task Basic_mode_challenges_with_Basic_and_token_mode_with_Bearer_and_serves_tokens()
    {
        var htpasswd = Htpasswd(HtpasswdFileTests.Entry("alice", "wonderland"));
        using var basic = RegistryAuthentication.Create(new RegistryAuthOptions { HtpasswdPath = htpasswd }, TimeProvider.System);
        using var token = RegistryAuthentication.Create(
            new RegistryAuthOptions { HtpasswdPath = htpasswd, UseTokens = true, TokenKeyPath = Path.Combine(_directory, "token", "key.pem") },
            TimeProvider.System);
        await using var basicServer = await AuthTestServer.StartAsync(basic.AccessController);
        await using var tokenServer = await AuthTestServer.StartAsync(token.AccessController, app => app.MapRegistryTokenEndpoint(token.TokenEndpoint!));
        using var basicClient = basicServer.Client();
        using var tokenClient = tokenServer.Client("alice", "wonderland");

        using var basicChallenge = await basicClient.GetAsync(new Uri("/v2/", UriKind.Relative));
        using var bearerChallenge = await tokenClient.GetAsync(new Uri("/v2/", UriKind.Relative));
        using var tokenResponse = await tokenClient.GetAsync(new Uri("/token?service=airlock&scope=repository:a:pull", UriKind.Relative));

        Assert.Null(basic.TokenEndpoint);
        Assert.StartsWith("Basic ", basicChallenge.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.StartsWith("Bearer realm=", bearerChallenge.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, tokenResponse.StatusCode);
        Assert.True(File.Exists(Path.Combine(_directory, "token", "key.pem")));
    }
}
