using Airlock.Node;

namespace Airlock.Tests.Node;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ContainerdRendererTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("al-render-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private ContainerdConfigOptions Options => new() { DataDir = _dir, Generator = "k3s" };

    private static RegistriesFile Parse(string yaml) => RegistriesFileReader.Parse(yaml, "registries.yaml").File;

    [Theory]
    [MemberData(nameof(K3sVectorTests.Cases), MemberType = typeof(K3sVectorTests))]
    public async Task Rendered_certs_d_tree_on_disk_equals_the_vector(string name)
    {
        var plan = await ContainerdRenderer.PlanAsync(K3sVectorTests.Read(name), Options, K3sVectors.DisableDefault(name), CancellationToken.None);
        await ContainerdRenderer.ApplyAsync(plan, CancellationToken.None);

        var certsDir = Options.CertsDir;
        var dirs = Directory.Exists(certsDir) ? Directory.GetDirectories(certsDir).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToList() : [];
        Assert.Equal(K3sVectors.HostsList(name), dirs);
        foreach (var dir in dirs)
        {
            Assert.Equal(
                File.ReadAllBytes(Path.Combine(K3sVectors.CaseDir(name), "expected", "certs.d", dir!, "hosts.toml")),
                File.ReadAllBytes(Path.Combine(certsDir, dir!, "hosts.toml")));
        }
    }

    [Fact]
    public async Task A_rewrite_with_a_backslash_or_a_quote_is_escaped_into_valid_TOML_with_the_same_pattern_and_others_stay_K3s_bytes()
    {
        var file = Parse("mirrors:\n  registry.example.com:\n    endpoint: [\"https://m.example.com\"]\n    rewrite:\n"
            + "      '^lib\\.(\\w+)$': 'x/$1'\n      '^say/\"(.*)\"$': 'quoted \"$1\"'\n      '^plain/(.*)$': 'p/$1'\n      '^both$': \"it's \\\"both\\\"\\\\\"\n");

        var plan = await ContainerdRenderer.PlanAsync(file, Options, false, CancellationToken.None);

        var hostsToml = plan.Files.Single(f => f.Path == Path.Combine(Options.CertsDir, "registry.example.com", ContainerdRenderer.HostsTomlName)).Content;
        // Literal strings where they can hold the text: no escapes, which containerd 1.6/1.7's go-toml v1 misreads in keys.
        Assert.Contains("    '^lib\\.(\\w+)$' = \"x/$1\"\n", hostsToml, StringComparison.Ordinal);
        Assert.Contains("    '^say/\"(.*)\"$' = 'quoted \"$1\"'\n", hostsToml, StringComparison.Ordinal);
        Assert.Contains("    \"^both$\" = \"it's \\\"both\\\"\\\\\"\n", hostsToml, StringComparison.Ordinal);
        Assert.Contains("    \"^plain/(.*)$\" = \"p/$1\"\n", hostsToml, StringComparison.Ordinal);
        var host = (Tomlyn.Model.TomlTable)((Tomlyn.Model.TomlTable)Tomlyn.TomlSerializer.Deserialize<Tomlyn.Model.TomlTable>(hostsToml)!["host"])["https://m.example.com/v2"];
        var rewrites = (Tomlyn.Model.TomlTable)host["rewrite"];
        Assert.Equal("x/$1", rewrites["^lib\\.(\\w+)$"]);
        Assert.Equal("quoted \"$1\"", rewrites["^say/\"(.*)\"$"]);
        Assert.Equal("p/$1", rewrites["^plain/(.*)$"]);
        Assert.Equal("it's \"both\"\\", rewrites["^both$"]);
    }

    [Fact]
    public async Task Rendering_twice_changes_nothing_and_leaves_no_temp_files()
    {
        var file = Parse("mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com\"]\n");
        await ContainerdRenderer.ApplyAsync(await ContainerdRenderer.PlanAsync(file, Options, false, CancellationToken.None), CancellationToken.None);
        var config = Path.Combine(Options.ContainerdDir, "config.toml");
        var before = File.GetLastWriteTimeUtc(config);

        var second = await ContainerdRenderer.PlanAsync(file, Options, false, CancellationToken.None);
        Assert.False(second.HasChanges);
        Assert.Equal(string.Empty, second.Diff());
        await ContainerdRenderer.ApplyAsync(second, CancellationToken.None);

        Assert.Equal(before, File.GetLastWriteTimeUtc(config));
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp", SearchOption.AllDirectories));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(config));
    }

    [Fact]
    public async Task Generated_directories_no_longer_configured_are_removed_but_hand_written_ones_are_kept()
    {
        await ContainerdRenderer.ApplyAsync(await ContainerdRenderer.PlanAsync(Parse("mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com\"]\n  quay.io:\n    endpoint: [\"https://q.example.com\"]\n"), Options, false, CancellationToken.None), CancellationToken.None);
        var manual = Path.Combine(Options.CertsDir, "ghcr.io");
        Directory.CreateDirectory(manual);
        await File.WriteAllTextAsync(Path.Combine(manual, "hosts.toml"), "server = \"https://ghcr.io\"\n");

        var plan = await ContainerdRenderer.PlanAsync(Parse("mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com\"]\n"), Options, false, CancellationToken.None);
        Assert.Equal([Path.Combine(Options.CertsDir, "quay.io")], plan.StaleHostDirectories);
        await ContainerdRenderer.ApplyAsync(plan, CancellationToken.None);

        Assert.False(Directory.Exists(Path.Combine(Options.CertsDir, "quay.io")));
        Assert.True(Directory.Exists(Path.Combine(Options.CertsDir, "docker.io")));
        Assert.True(File.Exists(Path.Combine(manual, "hosts.toml")));
    }

    [Fact]
    public async Task Diff_shows_changed_lines_new_files_and_removed_directories()
    {
        await ContainerdRenderer.ApplyAsync(await ContainerdRenderer.PlanAsync(Parse("mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com\"]\n  quay.io:\n    endpoint: [\"https://q.example.com\"]\n"), Options, false, CancellationToken.None), CancellationToken.None);

        var plan = await ContainerdRenderer.PlanAsync(Parse("mirrors:\n  docker.io:\n    endpoint: [\"https://n.example.com\"]\n  gcr.io:\n    endpoint: [\"https://g.example.com\"]\n"), Options, false, CancellationToken.None);
        var diff = plan.Diff();

        var hub = Path.Combine(Options.CertsDir, "docker.io", "hosts.toml");
        Assert.Contains($"--- a{hub}\n+++ b{hub}\n", diff, StringComparison.Ordinal);
        Assert.Contains("-[host.\"https://m.example.com/v2\"]\n+[host.\"https://n.example.com/v2\"]\n", diff, StringComparison.Ordinal);
        Assert.Contains($"--- /dev/null\n+++ b{Path.Combine(Options.CertsDir, "gcr.io", "hosts.toml")}\n@@ -0,0 +1,8 @@\n", diff, StringComparison.Ordinal);
        Assert.Contains($"--- a{Path.Combine(Options.CertsDir, "quay.io", "hosts.toml")}\n+++ /dev/null\n@@ -1,8 +0,0 @@\n", diff, StringComparison.Ordinal);
        Assert.DoesNotContain("config.toml", diff, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Proxy_environment_is_written_with_the_generated_header_and_removed_when_the_proxy_goes()
    {
        var proxy = ContainerdProxyEnvironment.Build(
            new System.Collections.Hashtable { ["CONTAINERD_HTTPS_PROXY"] = "http://proxy:3128" },
            new ClusterNetworks { ClusterCidrs = ["10.42.0.0/16"], ServiceCidrs = ["10.43.0.0/16"] });
        await ContainerdRenderer.ApplyAsync(await ContainerdRenderer.PlanAsync(RegistriesFile.Empty, Options, false, CancellationToken.None, proxy), CancellationToken.None);
        var path = Path.Combine(Options.ContainerdDir, "proxy.env");
        Assert.Equal(
            "# File generated by k3s. DO NOT EDIT.\nHTTPS_PROXY=http://proxy:3128\nNO_PROXY=.svc,.cluster.local,10.42.0.0/16,10.43.0.0/16\n",
            await File.ReadAllTextAsync(path));

        var plan = await ContainerdRenderer.PlanAsync(RegistriesFile.Empty, Options, false, CancellationToken.None);
        Assert.Contains("+++ /dev/null", plan.Diff(), StringComparison.Ordinal);
        await ContainerdRenderer.ApplyAsync(plan, CancellationToken.None);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task Registry_keys_that_are_not_a_single_directory_name_are_never_written_outside_certs_d()
    {
        var file = Parse("configs:\n  \"..\":\n    tls:\n      insecure_skip_verify: true\n  reg.example.com/../../../escape:\n    tls:\n      insecure_skip_verify: true\n  ok.example.com:\n    tls:\n      insecure_skip_verify: true\n");
        var plan = await ContainerdRenderer.PlanAsync(file, Options, false, CancellationToken.None);

        Assert.Equal([Path.Combine(Options.ContainerdDir, "config.toml"), Path.Combine(Options.CertsDir, "ok.example.com", "hosts.toml")], plan.Files.Select(f => f.Path));
        Assert.Equal(
            [2, 5],
            RegistriesValidator.Validate(file, []).Where(p => p.Severity == ProblemSeverity.Error && p.Message.Contains("without scheme or path", StringComparison.Ordinal)).Select(p => p.Line));
    }
}
