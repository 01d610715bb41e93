namespace Airlock.Interop.Tests.Fixtures;

/// <summary>What <c>airlock registries render</c> wrote: certs.d and the config.toml beside it.</summary>
public sealed record RenderedRegistries(string CertsDirectory)
{
    public string ConfigPath => Path.Combine(Path.GetDirectoryName(CertsDirectory)!, "config.toml");
}

/// <summary>Runs the real <c>airlock registries render</c> (the CLI built with the tests) for a containerd release (1.6 by default).</summary>
public static class RegistriesRender
{
    /// <summary>K3s's (and so Airlock's) fixed CRI streaming port.</summary>
    private const string FixedStreamPort = "stream_server_port = \"10010\"";

    /// <summary>
    /// Writes <paramref name="yaml"/> as registries.yaml in <paramref name="dataDirectory"/> and renders it there.
    /// With <paramref name="locations"/>, config.toml puts containerd's root, state and socket there, and its CRI
    /// streaming port becomes ephemeral: the one change to the rendered file, because containerd 1.6 exits ("Failed
    /// to run CRI service") when the port is taken, e.g. by another test's containerd on this machine.
    /// </summary>
    public static async Task<RenderedRegistries> RenderAsync(string dataDirectory, string yaml, ContainerdLocations? locations = null, string containerdVersion = "1.6",
        IEnumerable<string>? extraArguments = null)
    {
        Directory.CreateDirectory(dataDirectory);
        var registriesPath = Path.Combine(dataDirectory, "registries.yaml");
        await File.WriteAllTextAsync(registriesPath, yaml);
        var airlockConfig = Path.Combine(dataDirectory, "config.yaml");
        await File.WriteAllTextAsync(airlockConfig, "{}\n");
        List<string> arguments =
        [
            "registries", "render", "--registries", registriesPath, "--data-dir", dataDirectory,
            "--containerd-version", containerdVersion, "--systemd-cgroup", "false", .. extraArguments ?? [],
        ];
        if (locations is not null)
        {
            arguments.AddRange(["--containerd-root", locations.Root, "--containerd-state", locations.State, "--containerd-address", locations.Address]);
        }

        (await Tool.RunAsync(RegistryProcess.AirlockCliPath(), arguments, environment: new Dictionary<string, string> { ["AIRLOCK_CONFIG"] = airlockConfig }))
            .EnsureSuccess();
        var rendered = new RenderedRegistries(Path.Combine(dataDirectory, "agent", "etc", "containerd", "certs.d"));
        if (locations is not null)
        {
            var config = await File.ReadAllTextAsync(rendered.ConfigPath);
            if (!config.Contains(FixedStreamPort, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"the rendered {rendered.ConfigPath} no longer sets {FixedStreamPort}; update this fixture:\n{config}");
            }

            await File.WriteAllTextAsync(rendered.ConfigPath, config.Replace(FixedStreamPort, "stream_server_port = \"0\"", StringComparison.Ordinal));
        }

        return rendered;
    }
}
