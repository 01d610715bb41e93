using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// The path every node takes: containerd resolves and pulls an image from the registry through a
/// hosts.toml (as Airlock renders it from registries.yaml), unpacks it and runs it with runc.
/// </summary>
public sealed class ContainerdTests : IAsyncLifetime
{
    private readonly TempRoot _work = TempRoot.Create("airlock-ctrd-test-");
    private RegistryProcess? _registry;
    private ContainerdProcess? _containerd;

    private RegistryProcess Registry => _registry ?? throw new InvalidOperationException("not started");

    private ContainerdProcess Containerd => _containerd ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        var registry = RegistryProcess.StartAsync();
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
    public async Task Containerd_pulls_an_OCI_image_through_hosts_toml_and_runs_it()
    {
        var image = await TestImages.WriteRunnableAsync(Layout("oci"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();

        await PullAndAssertDigestAsync($"{Registry.Host}/test/busybox:1", image);
        await RunAndAssertGreetingAsync($"{Registry.Host}/test/busybox:1");
    }

    [Fact]
    public async Task Containerd_pulls_a_Docker_schema2_image_and_runs_it()
    {
        var image = await TestImages.WriteRunnableAsync(Layout("docker"), ImageFlavor.Docker);
        (await Skopeo.PushAsync(image, Registry, "test/busybox-docker:1")).EnsureSuccess();

        await PullAndAssertDigestAsync($"{Registry.Host}/test/busybox-docker:1", image);
        await RunAndAssertGreetingAsync($"{Registry.Host}/test/busybox-docker:1");
    }

    [Fact]
    public async Task Containerd_pulls_the_amd64_image_of_a_multi_arch_index_and_runs_it()
    {
        var image = await TestImages.WriteMultiArchAsync(Layout("multi"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox-multi:1", ["--all"])).EnsureSuccess();

        await PullAndAssertDigestAsync($"{Registry.Host}/test/busybox-multi:1", image, ["--platform", "linux/amd64"]);
        await RunAndAssertGreetingAsync($"{Registry.Host}/test/busybox-multi:1");
    }

    [Fact]
    public async Task Containerd_pulls_an_image_pinned_by_digest_and_runs_it()
    {
        var image = await TestImages.WriteRunnableAsync(Layout("oci"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();
        var pinned = $"{Registry.Host}/test/busybox@{image.Digest}";

        await PullAndAssertDigestAsync(pinned, image);
        await RunAndAssertGreetingAsync(pinned);
    }

    [Fact]
    public async Task Containerd_pull_of_a_tag_the_registry_does_not_have_fails_with_not_found()
    {
        var hostsDirectory = Containerd.WriteHostsDirectory(Registry.Host, Registry.BaseAddress);

        var pull = await Containerd.PullAsync($"{Registry.Host}/test/absent:1", hostsDirectory);

        Assert.False(pull.Succeeded, pull.ToString());
        Assert.Contains("not found", pull.Stderr, StringComparison.OrdinalIgnoreCase);
        var images = (await Containerd.CtrAsync(["images", "ls", "-q"])).EnsureSuccess();
        Assert.DoesNotContain("test/absent", images.Stdout, StringComparison.Ordinal);
    }

    private string Layout(string name) => Path.Combine(_work.Path, name);

    private async Task PullAndAssertDigestAsync(string reference, TestImage image, IEnumerable<string>? extraArguments = null)
    {
        var hostsDirectory = Containerd.WriteHostsDirectory(Registry.Host, Registry.BaseAddress);

        (await Containerd.PullAsync(reference, hostsDirectory, extraArguments)).EnsureSuccess();

        // ctr images ls: REF TYPE DIGEST SIZE PLATFORMS LABELS — the registry must hand out the very manifest pushed.
        var listing = (await Containerd.CtrAsync(["images", "ls"])).EnsureSuccess();
        var row = listing.Stdout.Split('\n').Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .SingleOrDefault(fields => fields.Length >= 3 && fields[0] == reference);
        Assert.True(row is not null, $"{reference} is not in ctr images ls:\n{listing.Stdout}");
        Assert.Equal(image.MediaType, row[1]);
        Assert.Equal(image.Digest.ToString(), row[2]);
    }

    private async Task RunAndAssertGreetingAsync(string reference)
    {
        var run = await Containerd.RunAsync(reference);

        Assert.True(run.Succeeded, $"{run}\ncontainerd log:\n{Containerd.RecentOutput}");
        Assert.Equal(TestImages.Greeting, run.Stdout.Trim());
    }
}
