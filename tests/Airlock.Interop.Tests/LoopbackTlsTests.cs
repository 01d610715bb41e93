using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// The operator's journey with a TLS registry on loopback (issue 14): <c>airlock registry --listen 127.0.0.1:P
/// --tls-self-signed</c> prints a registries.yaml snippet, and that snippet, exactly as printed, must work for
/// <c>airlock images load --to 127.0.0.1:P --registries</c>, for <c>airlock registries render</c> and a CRI pull through
/// the real containerd started on the rendering, and for <c>ctr images pull --hosts-dir</c>. Before, the rendering wrote
/// <c>server = "http://127.0.0.1:P/v2"</c> (K3s's loopback rule) beside the CA, and both the load and containerd 1.6
/// spoke plain HTTP to the TLS port.
/// </summary>
public sealed class LoopbackTlsContainerd16Tests() : LoopbackTlsTests(ContainerdRelease.Debian12);

public sealed class LoopbackTlsContainerd17Tests() : LoopbackTlsTests(ContainerdRelease.Series17);

public sealed class LoopbackTlsContainerd2Tests() : LoopbackTlsTests(ContainerdRelease.Series2);

public abstract class LoopbackTlsTests(ContainerdRelease release) : IAsyncLifetime
{
    private const string TrustLine = "Trust it on each node with this in /etc/airlock/registries.yaml";
    private readonly TempRoot _work = TempRoot.Create("airlock-loopback-tls-");

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        _work.UnmountAndDelete();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task The_registries_yaml_snippet_a_self_signed_loopback_registry_prints_works_as_printed_for_load_render_CRI_and_ctr()
    {
        await using var registry = await RegistryProcess.StartAsync(RegistryKind.Airlock, new RegistryOptions { SelfSignedTls = true });
        var snippet = PrintedSnippet(registry.RecentOutput);
        Assert.StartsWith($"configs:\n  \"{registry.Host}\":\n    tls:\n      ca_file: \"{registry.CaPath}\"", snippet, StringComparison.Ordinal);
        var registriesYaml = Path.Combine(_work.Path, "registries.yaml");
        await File.WriteAllTextAsync(registriesYaml, snippet);

        // airlock images load --to 127.0.0.1:P --registries that.yaml
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "layout"));
        var archive = Path.Combine(_work.Path, "app.tar");
        (await AirlockAsync("images", "copy", "--quiet", $"oci:{image.LayoutPath}:{image.Tag}", $"docker-archive:{archive}:airgap.example/app/tls:1")).EnsureSuccess();
        (await AirlockAsync("images", "load", "--quiet", archive, "--to", registry.Host, "--registries", registriesYaml)).EnsureSuccess();
        var reference = $"{registry.Host}/app/tls:1";

        // airlock registries render of the same file, and the real containerd started on what it wrote.
        string? certsDirectory = null;
        await using var containerd = await ContainerdProcess.StartAsync(async locations =>
        {
            var rendered = await RegistriesRender.RenderAsync(Path.Combine(locations.RootPath, "data"), snippet, locations, release.Series);
            certsDirectory = rendered.CertsDirectory;
            return rendered.ConfigPath;
        }, release.Launcher());
        var hostsToml = await File.ReadAllTextAsync(Path.Combine(certsDirectory!, registry.Host, "hosts.toml"));
        Assert.Contains($"server = \"https://{registry.Host}/v2\"", hostsToml, StringComparison.Ordinal);
        Assert.Contains($"ca = [\"{registry.CaPath}\"]", hostsToml, StringComparison.Ordinal);

        // The kubelet's way: CRI PullImage.
        using (var cri = CriImages.Connect(containerd.Address))
        {
            await cri.PullAsync(reference);
            var pulled = await cri.StatusAsync(reference);
            Assert.True(pulled is not null, $"{reference} is not in the CRI image store");
            Assert.Contains($"{registry.Host}/app/tls@{image.Digest}", pulled.RepoDigests);
        }

        // ctr images pull --hosts-dir: the same resolver code, outside CRI.
        var pull = await containerd.PullAsync(reference, certsDirectory!);
        Assert.True(pull.Succeeded, pull.ToString());
        var listing = (await containerd.CtrAsync(["images", "ls"])).EnsureSuccess();
        Assert.Contains(image.Digest.ToString(), listing.Stdout, StringComparison.Ordinal);
    }

    /// <summary>The registries.yaml lines the registry printed after <see cref="TrustLine"/> (stderr log lines may surround them).</summary>
    private static string PrintedSnippet(string output)
    {
        var lines = output.Split('\n');
        var start = Array.FindIndex(lines, line => line.StartsWith(TrustLine, StringComparison.Ordinal));
        Assert.True(start >= 0, $"the registry printed no registries.yaml snippet:\n{output}");
        var snippet = lines.Skip(start + 1).SkipWhile(line => line != "configs:").TakeWhile(line => line == "configs:" || line.StartsWith("  ", StringComparison.Ordinal));
        return string.Join('\n', snippet) + "\n";
    }

    private async Task<ToolResult> AirlockAsync(params string[] arguments)
    {
        // Independent of the machine's /etc/airlock/config.yaml.
        var config = Path.Combine(_work.Path, "config.yaml");
        await File.WriteAllTextAsync(config, "{}\n");
        return await Tool.RunAsync(RegistryProcess.AirlockCliPath(), arguments, environment: new Dictionary<string, string> { ["AIRLOCK_CONFIG"] = config });
    }
}
