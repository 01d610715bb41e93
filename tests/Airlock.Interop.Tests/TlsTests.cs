using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// A registry serving HTTPS with its own self-signed certificate, as an air-gapped site runs it: clients
/// trust it through the CA file (skopeo's cert dir, the <c>ca</c> of containerd's hosts.toml) and refuse it
/// without.
/// </summary>
public sealed class TlsTests : IAsyncLifetime
{
    private readonly TempRoot _work = TempRoot.Create("airlock-tls-test-");
    private RegistryProcess? _registry;
    private ContainerdProcess? _containerd;

    private RegistryProcess Registry => _registry ?? throw new InvalidOperationException("not started");

    private ContainerdProcess Containerd => _containerd ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        var registry = RegistryProcess.StartAsync(options: new RegistryOptions { Tls = true });
        var containerd = ContainerdProcess.StartAsync();
        _registry = await registry;
        _containerd = await containerd;
    }

    public async Task DisposeAsync()
    {
        if (_containerd is not null)
        {
            await _containerd.DisposeAsync();
        }

        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    [Fact]
    public async Task Containerd_pulls_over_TLS_with_the_CA_from_hosts_toml_and_runs_the_image()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();
        var reference = $"{Registry.Host}/test/busybox:1";
        var caPath = Path.Combine(Registry.CertificateDirectory, "ca.crt");
        var hostsDirectory = Containerd.WriteHostsDirectory(Registry.Host, Registry.BaseAddress, caPath);

        (await Containerd.PullAsync(reference, hostsDirectory)).EnsureSuccess();
        var run = await Containerd.RunAsync(reference);

        Assert.True(run.Succeeded, $"{run}\ncontainerd log:\n{Containerd.RecentOutput}");
        Assert.Equal(TestImages.Greeting, run.Stdout.Trim());
    }

    [Fact]
    public async Task Skopeo_refuses_the_registry_certificate_without_its_CA()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));

        var push = await Skopeo.RunAsync(["copy", "--quiet", image.SourceReference, $"docker://{Registry.Host}/test/busybox:1"]);

        Assert.False(push.Succeeded, push.ToString());
        Assert.Contains("certificate signed by unknown authority", push.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Containerd_refuses_the_registry_certificate_without_a_CA_in_hosts_toml()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();
        var hostsDirectory = Containerd.WriteHostsDirectory(Registry.Host, Registry.BaseAddress);

        var pull = await Containerd.PullAsync($"{Registry.Host}/test/busybox:1", hostsDirectory);

        Assert.False(pull.Succeeded, pull.ToString());
        Assert.Contains("certificate signed by unknown authority", pull.Stderr, StringComparison.Ordinal);
    }
}
