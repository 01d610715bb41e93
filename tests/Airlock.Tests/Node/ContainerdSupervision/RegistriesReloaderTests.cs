using Airlock.Node;
using Airlock.Node.ContainerdSupervision;

namespace Airlock.Tests.Node.ContainerdSupervision;

/// <summary>The agent's registries.yaml reloads, rendered into a temp data dir (no containerd needed to see what is written).</summary>
public sealed class RegistriesReloaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("al-reload-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string RegistriesPath => Path.Combine(_dir, "registries.yaml");

    private string HostsToml => Path.Combine(_dir, "data", "agent", "etc", "containerd", "certs.d", "registry.example.com", "hosts.toml");

    private RegistriesReloader Reloader(bool required, List<string> restarts) => new(
        new ContainerdRenderSettings
        {
            RegistriesPath = RegistriesPath,
            RegistriesRequired = required,
            Config = new ContainerdConfigOptions { DataDir = Path.Combine(_dir, "data") },
        },
        (reason, _) =>
        {
            restarts.Add(reason);
            return Task.CompletedTask;
        },
        TimeProvider.System);

    [Fact]
    public async Task A_required_registries_yaml_that_disappears_is_refused_and_the_mirrors_in_force_stay()
    {
        await File.WriteAllTextAsync(RegistriesPath, "mirrors:\n  registry.example.com:\n    endpoint: [\"https://mirror.example.com\"]\n");
        var restarts = new List<string>();
        using var reloader = Reloader(required: true, restarts);
        Assert.False((await reloader.ReloadAsync(CancellationToken.None)).Rejected);
        var rendered = await File.ReadAllTextAsync(HostsToml);
        restarts.Clear();

        File.Delete(RegistriesPath);
        var outcome = await reloader.ReloadAsync(CancellationToken.None);

        Assert.True(outcome.Rejected);
        Assert.Contains(outcome.Problems, p => p.Severity == ProblemSeverity.Fatal && p.Source == RegistriesPath);
        Assert.Equal(rendered, await File.ReadAllTextAsync(HostsToml));
        Assert.Empty(restarts);
    }

    [Fact]
    public async Task The_default_registries_yaml_absent_from_the_start_means_no_registries_as_in_K3s()
    {
        var restarts = new List<string>();
        using var reloader = Reloader(required: false, restarts);

        var outcome = await reloader.ReloadAsync(CancellationToken.None);

        Assert.False(outcome.Rejected);
        Assert.Empty(outcome.Problems);
        Assert.False(File.Exists(HostsToml));
    }
}
