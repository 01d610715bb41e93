using System.Diagnostics;
using Airlock.Tests.Node.Containerd;

namespace Airlock.Tests.Node.Mirror;

/// <summary>
/// Debian's containerd 1.6 pulling with <c>ctr images pull --hosts-dir</c> through hosts.toml rendered with a mirror
/// address → the node mirror → Airlock registries on loopback ports playing mirror endpoints and default endpoints.
/// Registry names are loopback host:port pairs, so nothing ever resolves or reaches a name outside this machine.
/// </summary>
public sealed class NodeMirrorContainerdTests : IClassFixture<ContainerdProcess>, IDisposable
{
    private readonly ContainerdProcess _containerd;
    private readonly string _dataDir = Directory.CreateTempSubdirectory("airlock-mirror-").FullName;

    public NodeMirrorContainerdTests(ContainerdProcess containerd) => _containerd = containerd;

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    private Task<ToolResult> PullAsync(string certsDir, string reference) =>
        _containerd.CtrAsync(["images", "pull", "--hosts-dir", certsDir, reference]);

    private async Task<string> ImageDigestAsync(string reference)
    {
        var (code, output) = await _containerd.CtrAsync(["images", "ls"]);
        Assert.Equal(0, code);
        var line = output.Split('\n').Single(l => l.StartsWith(reference + " ", StringComparison.Ordinal));
        return line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Single(f => f.StartsWith("sha256:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Render_hosts_dir_writes_only_the_hosts_toml_tree_that_containerd_reads_from_a_directory_of_its_own()
    {
        // Canonical Kubernetes's shape: a mirror for a registry in <hosts.d>/<registry>/hosts.toml, containerd's config
        // already pointing at hosts.d.
        await using var upstream = await UpstreamRegistry.StartAsync();
        var image = await upstream.PushAsync("canonical/k8s-snap/pause", "3.10", "hosts.d");
        var registry = $"127.0.0.1:{MirrorTestBed.ClosedPort()}";
        var registries = Path.Combine(_dataDir, "registries.yaml");
        await File.WriteAllTextAsync(registries, $"mirrors:\n  \"{registry}\":\n    endpoint: [\"http://{upstream.Host}\"]\n");
        var hostsDir = Directory.CreateDirectory(Path.Combine(_dataDir, "hosts.d")).FullName;
        var data = Path.Combine(_dataDir, "data");
        var output = new StringWriter();
        var error = new StringWriter();

        var code = await Airlock.Cli.Hosting.AirlockCli.RunAsync(
            ["registries", "render", "--registries", registries, "--hosts-dir", hostsDir, "--data-dir", data], new System.Collections.Hashtable(), output, error);

        Assert.True(code == 0, error.ToString());
        Assert.Equal([Path.Combine(hostsDir, registry, "hosts.toml")], Directory.GetFiles(hostsDir, "*", SearchOption.AllDirectories));
        Assert.Contains($"[host.\"http://{upstream.Host}/v2\"]", await File.ReadAllTextAsync(Path.Combine(hostsDir, registry, "hosts.toml")), StringComparison.Ordinal);
        Assert.False(Directory.Exists(data));
        var (pulled, pullOutput) = await PullAsync(hostsDir, $"{registry}/canonical/k8s-snap/pause:3.10");
        Assert.True(pulled == 0, pullOutput);
        Assert.Equal(image.Index.Digest.ToString(), await ImageDigestAsync($"{registry}/canonical/k8s-snap/pause:3.10"));
    }

    [Fact]
    public async Task A_rewrite_rule_changes_the_repository_the_upstream_is_asked_for()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var image = await upstream.PushAsync("mirrored/team/app", "1", "rewritten");
        var registry = $"127.0.0.1:{MirrorTestBed.ClosedPort()}";
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "{{registry}}":
                endpoint: ["{{upstream.Host}}"]
                rewrite:
                  "^team/(.*)": "mirrored/team/$1"
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: false);
        var certs = await MirrorTestBed.RenderAsync(_dataDir, file, disableDefault: false, MirrorTestBed.EndPointOf(mirror));
        var hostsToml = await File.ReadAllTextAsync(Path.Combine(certs, registry, "hosts.toml"));
        Assert.Contains($"server = \"{mirror.ServerUrl}\"", hostsToml, StringComparison.Ordinal);
        Assert.DoesNotContain("rewrite", hostsToml.Split('\n').Skip(2).FirstOrDefault() ?? string.Empty, StringComparison.Ordinal);

        var (code, output) = await PullAsync(certs, $"{registry}/team/app:1");

        Assert.True(code == 0, output);
        Assert.Equal(image.Index.Digest.ToString(), await ImageDigestAsync($"{registry}/team/app:1"));
        Assert.NotEmpty(upstream.RepositoryRequests);
        Assert.All(upstream.RepositoryRequests, r => Assert.StartsWith(r.Split(' ')[0] + " /v2/mirrored/team/app/", r, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Stock_containerd_ignores_a_K3s_rewrite_table_so_without_the_mirror_the_rewritten_image_is_not_found()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        await upstream.PushAsync("mirrored/app", "1", "rewrite ignored");
        var registry = $"127.0.0.1:{MirrorTestBed.ClosedPort()}";
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "{{registry}}":
                endpoint: ["{{upstream.Host}}"]
                rewrite:
                  "^app$": "mirrored/app"
            """);
        var certs = await MirrorTestBed.RenderAsync(_dataDir, file, disableDefault: true, mirror: null);

        var (code, _) = await PullAsync(certs, $"{registry}/app:1");

        Assert.NotEqual(0, code);
        Assert.Contains(upstream.RepositoryRequests, r => r.Contains("/v2/app/manifests/1", StringComparison.Ordinal));
        Assert.DoesNotContain(upstream.RepositoryRequests, r => r.Contains("mirrored", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_the_default_endpoint_disabled_no_request_reaches_it_and_a_miss_fails_cleanly()
    {
        // The registry's own endpoint has the image, so any fallback to it would make the pull succeed.
        await using var defaultEndpoint = await UpstreamRegistry.StartAsync();
        await using var emptyMirror = await UpstreamRegistry.StartAsync();
        var registry = defaultEndpoint.Host;
        await defaultEndpoint.PushAsync("app", "1", "only at the default endpoint");
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "{{registry}}":
                endpoint: ["{{emptyMirror.Host}}"]
            """);

        // Stock containerd with K3s's hosts.toml (no server line) falls back to the registry itself.
        var k3sCerts = await MirrorTestBed.RenderAsync(Path.Combine(_dataDir, "k3s"), file, disableDefault: true, mirror: null);
        var (fellBack, fellBackOutput) = await PullAsync(k3sCerts, $"{registry}/app:1");
        Assert.True(fellBack == 0, fellBackOutput);
        Assert.NotEmpty(defaultEndpoint.RepositoryRequests);

        var before = defaultEndpoint.Access.Requests.Count;
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true);
        var certs = await MirrorTestBed.RenderAsync(_dataDir, file, disableDefault: true, MirrorTestBed.EndPointOf(mirror));
        var clock = Stopwatch.StartNew();
        var (code, output) = await PullAsync(certs, $"{registry}/app:2");

        Assert.NotEqual(0, code);
        Assert.Contains("not found", output, StringComparison.OrdinalIgnoreCase);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the failing pull took {clock.Elapsed}");
        Assert.Equal(before, defaultEndpoint.Access.Requests.Count);
        Assert.Contains(emptyMirror.RepositoryRequests, r => r.Contains("/v2/app/manifests/2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Render_with_the_default_endpoint_disabled_and_no_mirror_address_never_lets_containerd_reach_the_registry_itself()
    {
        // The registry's own endpoint has the image, so any fallback to it would make the pull succeed.
        await using var defaultEndpoint = await UpstreamRegistry.StartAsync();
        await using var emptyMirror = await UpstreamRegistry.StartAsync();
        var registry = defaultEndpoint.Host;
        await defaultEndpoint.PushAsync("app", "1", "only at the default endpoint");
        var registries = Path.Combine(_dataDir, "registries.yaml");
        await File.WriteAllTextAsync(registries, $"mirrors:\n  \"{registry}\":\n    endpoint: [\"{emptyMirror.Host}\"]\n");
        async Task<(string CertsDir, string Error)> RenderAsync(string name, params string[] extra)
        {
            var dataDir = Path.Combine(_dataDir, name);
            var error = new StringWriter();
            var code = await Airlock.Cli.Hosting.AirlockCli.RunAsync(
                ["registries", "render", "--registries", registries, "--data-dir", dataDir, "--containerd-version", "1.6", "--systemd-cgroup", "false",
                 "--disable-default-registry-endpoint", .. extra],
                new System.Collections.Hashtable { ["AIRLOCK_CONFIG"] = "/dev/null" }, new StringWriter(), error);
            Assert.True(code == 0, error.ToString());
            return (Path.Combine(dataDir, "agent", "etc", "containerd", "certs.d"), error.ToString());
        }

        // No --mirror-address: containerd is sent to the agent's mirror address and to nothing else. Whether or not a
        // mirror runs there, the registry itself is never asked.
        var (certs, note) = await RenderAsync("default");
        Assert.Contains("server = \"http://127.0.0.1:5100/v2\"", await File.ReadAllTextAsync(Path.Combine(certs, registry, "hosts.toml")), StringComparison.Ordinal);
        Assert.Contains("is pulled only through the node-local mirror at 127.0.0.1:5100", note, StringComparison.Ordinal);
        var (code, output) = await PullAsync(certs, $"{registry}/app:1");
        Assert.True(code != 0, output);
        Assert.Empty(defaultEndpoint.RepositoryRequests);

        // --mirror-address off: K3s's file, which stock containerd reads as "fall back to the registry itself" — with a warning.
        var (k3sCerts, warning) = await RenderAsync("k3s", "--mirror-address", "off");
        Assert.Contains("warning: registry", warning, StringComparison.Ordinal);
        (code, output) = await PullAsync(k3sCerts, $"{registry}/app:1");
        Assert.True(code == 0, output);
        Assert.NotEmpty(defaultEndpoint.RepositoryRequests);
    }

    [Fact]
    public async Task A_refused_and_a_silent_endpoint_are_abandoned_within_the_timeouts_and_the_next_one_serves_the_pull()
    {
        using var silent = new Blackhole();
        var refused = $"127.0.0.1:{MirrorTestBed.RefusingPort()}";
        await using var working = await UpstreamRegistry.StartAsync();
        var image = await working.PushAsync("app", "1", "behind two dead endpoints");
        var registry = $"127.0.0.1:{MirrorTestBed.ClosedPort()}";
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "{{registry}}":
                endpoint: ["{{refused}}", "{{silent.Host}}", "{{working.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true,
            connectTimeout: TimeSpan.FromSeconds(1), responseTimeout: TimeSpan.FromSeconds(2));
        var certs = await MirrorTestBed.RenderAsync(_dataDir, file, disableDefault: true, MirrorTestBed.EndPointOf(mirror));
        var clock = Stopwatch.StartNew();

        var (code, output) = await PullAsync(certs, $"{registry}/app:1");

        Assert.True(code == 0, output);
        Assert.Equal(image.Index.Digest.ToString(), await ImageDigestAsync($"{registry}/app:1"));
        Assert.True(silent.WasContacted);

        // One response timeout for the first request; the silent endpoint is then tried last while it stays down.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(12), $"the pull took {clock.Elapsed}");
    }

    [Fact]
    public async Task The_ns_parameter_selects_the_registry_so_one_mirror_serves_several()
    {
        await using var upstreamA = await UpstreamRegistry.StartAsync();
        await using var upstreamB = await UpstreamRegistry.StartAsync();
        var imageA = await upstreamA.PushAsync("app", "1", "registry A");
        var imageB = await upstreamB.PushAsync("app", "1", "registry B");
        var registryA = $"127.0.0.1:{MirrorTestBed.ClosedPort()}";
        var registryB = $"127.0.0.1:{MirrorTestBed.ClosedPort()}";
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "{{registryA}}":
                endpoint: ["{{upstreamA.Host}}"]
              "{{registryB}}":
                endpoint: ["{{upstreamB.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true);
        var certs = await MirrorTestBed.RenderAsync(_dataDir, file, disableDefault: true, MirrorTestBed.EndPointOf(mirror));

        var pullA = await PullAsync(certs, $"{registryA}/app:1");
        var pullB = await PullAsync(certs, $"{registryB}/app:1");

        Assert.True(pullA.ExitCode == 0, pullA.Output);
        Assert.True(pullB.ExitCode == 0, pullB.Output);
        Assert.Equal(imageA.Index.Digest.ToString(), await ImageDigestAsync($"{registryA}/app:1"));
        Assert.Equal(imageB.Index.Digest.ToString(), await ImageDigestAsync($"{registryB}/app:1"));
        Assert.NotEqual(imageA.Index.Digest, imageB.Index.Digest);
    }
}
