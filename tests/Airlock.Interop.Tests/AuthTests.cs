using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// A registry that requires an htpasswd user: the real clients log in with <c>--creds</c> or an auth
/// file (the format <c>podman login</c> writes), and without them a push is refused and stores nothing.
/// </summary>
public sealed class AuthTests : IAsyncLifetime
{
    private static readonly RegistryCredentials Alice = new("alice", "correct horse battery staple");
    private readonly TempRoot _work = TempRoot.Create("airlock-auth-test-");
    private RegistryProcess? _registry;

    private RegistryProcess Registry => _registry ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync() =>
        _registry = await RegistryProcess.StartAsync(options: new RegistryOptions { RequiredCredentials = Alice });

    public async Task DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    [Fact]
    public async Task Skopeo_with_creds_pushes_and_pulls_the_same_manifest()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));

        (await Skopeo.PushAsync(image, Registry, "test/busybox:1", ["--dest-creds", Alice.CredsArgument])).EnsureSuccess();

        Assert.Equal(image.ManifestBytes, await Skopeo.RawManifestAsync(Registry, "test/busybox:1", ["--creds", Alice.CredsArgument]));
    }

    [Fact]
    public async Task Push_without_credentials_is_refused_and_stores_nothing()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));

        var push = await Skopeo.PushAsync(image, Registry, "test/busybox:1");

        AssertRefusedForAuthentication(push);
        await AssertTagAbsentAsync("test/busybox:1");
    }

    [Fact]
    public async Task Push_with_a_wrong_password_is_refused_and_stores_nothing()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        var mallory = Alice with { Password = "wrong password" };

        var push = await Skopeo.PushAsync(image, Registry, "test/busybox:1", ["--dest-creds", mallory.CredsArgument]);

        AssertRefusedForAuthentication(push);
        await AssertTagAbsentAsync("test/busybox:1");
    }

    [Fact]
    public async Task Pull_without_credentials_is_refused()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1", ["--dest-creds", Alice.CredsArgument])).EnsureSuccess();

        var inspect = await Skopeo.RunAsync(["inspect", "--raw", .. Skopeo.Tls(Registry), $"docker://{Registry.Host}/test/busybox:1"]);

        AssertRefusedForAuthentication(inspect);
    }

    [Fact]
    public async Task Podman_with_an_auth_file_pulls_and_pushes_and_without_it_is_refused()
    {
        using var podman = new Podman();
        var authFile = Path.Combine(_work.Path, "auth.json");
        Alice.WriteAuthFile(authFile, Registry.Host);
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1", ["--dest-authfile", authFile])).EnsureSuccess();
        var source = $"{Registry.Host}/test/busybox:1";
        var target = $"{Registry.Host}/pushed/busybox:1";

        AssertRefusedForAuthentication(await podman.RunAsync(["pull", "--quiet", "--tls-verify=false", source]));

        (await podman.RunAsync(["pull", "--quiet", "--tls-verify=false", "--authfile", authFile, source])).EnsureSuccess();
        (await podman.RunAsync(["tag", source, target])).EnsureSuccess();
        AssertRefusedForAuthentication(await podman.RunAsync(["push", "--quiet", "--tls-verify=false", target]));
        (await podman.RunAsync(["push", "--quiet", "--tls-verify=false", "--authfile", authFile, target])).EnsureSuccess();

        var pushed = await Skopeo.RawManifestAsync(Registry, "pushed/busybox:1", ["--authfile", authFile]);
        Assert.NotEmpty(pushed);
    }

    private static void AssertRefusedForAuthentication(ToolResult result)
    {
        Assert.False(result.Succeeded, result.ToString());
        Assert.Matches("(?i)unauthorized|authentication required|access to the resource is denied", result.Stderr);
    }

    private async Task AssertTagAbsentAsync(string repositoryAndTag)
    {
        var inspect = await Skopeo.RunAsync(["inspect", "--raw", "--creds", Alice.CredsArgument, .. Skopeo.Tls(Registry),
            $"docker://{Registry.Host}/{repositoryAndTag}"]);
        Assert.False(inspect.Succeeded, inspect.ToString());
        Assert.Contains("manifest unknown", inspect.Stderr, StringComparison.OrdinalIgnoreCase);
    }
}
