using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// Airlock's own auth modes with the real clients: the Docker token flow (<c>--auth token</c>) that
/// containerd, skopeo and podman speak, an access file limiting a user to repositories, and anonymous pull.
/// </summary>
public sealed class AirlockAuthTests : IAsyncLifetime
{
    private static readonly RegistryCredentials Alice = new("alice", "correct horse battery staple");
    private readonly TempRoot _work = TempRoot.Create("airlock-auth-airlock-");
    private readonly List<IAsyncDisposable> _started = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var started in _started)
        {
            await started.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    private async Task<RegistryProcess> StartAsync(params string[] arguments)
    {
        var registry = await RegistryProcess.StartAsync(RegistryKind.Airlock, new RegistryOptions { RequiredCredentials = Alice, AirlockArguments = arguments });
        _started.Add(registry);
        return registry;
    }

    private string AccessFile()
    {
        var path = Path.Combine(_work.Path, "access.yaml");
        File.WriteAllText(path, "access:\n  - users: [alice]\n    repositories: [\"team-a/*\"]\n    actions: [pull, push]\n");
        return path;
    }

    [Fact]
    public async Task Token_auth_skopeo_pushes_and_containerd_pulls_and_runs_with_credentials()
    {
        var registry = await StartAsync("--auth", "token");
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, registry, "test/busybox:1", ["--dest-creds", Alice.CredsArgument])).EnsureSuccess();

        await using var containerd = await ContainerdProcess.StartAsync();
        var hosts = containerd.WriteHostsDirectory(registry.Host, registry.BaseAddress);
        var reference = $"{registry.Host}/test/busybox:1";

        var anonymous = await containerd.PullAsync(reference, hosts);
        Assert.False(anonymous.Succeeded, anonymous.ToString());

        (await containerd.PullAsync(reference, hosts, ["--user", Alice.CredsArgument])).EnsureSuccess();
        var run = await containerd.RunAsync(reference);
        Assert.True(run.Succeeded, run.ToString());
        Assert.Equal(TestImages.Greeting, run.Stdout.Trim());
    }

    [Fact]
    public async Task Token_auth_podman_pulls_with_an_auth_file_and_is_refused_without()
    {
        var registry = await StartAsync("--auth", "token");
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, registry, "test/busybox:1", ["--dest-creds", Alice.CredsArgument])).EnsureSuccess();
        var authFile = Path.Combine(_work.Path, "auth.json");
        Alice.WriteAuthFile(authFile, registry.Host);
        using var podman = new Podman();

        Assert.False((await podman.RunAsync(["pull", "--quiet", "--tls-verify=false", $"{registry.Host}/test/busybox:1"])).Succeeded);
        (await podman.RunAsync(["pull", "--quiet", "--tls-verify=false", "--authfile", authFile, $"{registry.Host}/test/busybox:1"])).EnsureSuccess();
    }

    [Theory]
    [InlineData("basic")]
    [InlineData("token")]
    public async Task An_access_file_refuses_a_push_outside_the_users_repositories(string mode)
    {
        var registry = await StartAsync("--auth", mode, "--access", AccessFile());
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));

        (await Skopeo.PushAsync(image, registry, "team-a/busybox:1", ["--dest-creds", Alice.CredsArgument])).EnsureSuccess();
        var outside = await Skopeo.PushAsync(image, registry, "team-b/busybox:1", ["--dest-creds", Alice.CredsArgument]);

        Assert.False(outside.Succeeded, outside.ToString());
        Assert.Matches("(?i)denied|unauthorized|forbidden", outside.Stderr);
        var inspect = await Skopeo.RunAsync(["inspect", "--raw", .. Skopeo.Tls(registry), "--creds", Alice.CredsArgument, $"docker://{registry.Host}/team-b/busybox:1"]);
        Assert.False(inspect.Succeeded, "team-b/busybox:1 must not exist: " + inspect);
    }

    [Fact]
    public async Task Anonymous_pull_lets_skopeo_pull_without_credentials_but_not_push()
    {
        var registry = await StartAsync("--anonymous-pull");
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, registry, "test/busybox:1", ["--dest-creds", Alice.CredsArgument])).EnsureSuccess();

        Assert.Equal(image.ManifestBytes, await Skopeo.RawManifestAsync(registry, "test/busybox:1"));
        var push = await Skopeo.PushAsync(image, registry, "test/other:1");
        Assert.False(push.Succeeded, push.ToString());
    }
}
