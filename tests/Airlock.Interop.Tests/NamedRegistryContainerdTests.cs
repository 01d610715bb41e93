using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// A registry known by a DNS name, as on a real site (<c>registry.airlock.test</c>, port 443): its default
/// endpoint is then <c>https://NAME/v2</c>, the <c>server</c> line of hosts.toml, and <c>configs.NAME.tls.ca_file</c>
/// becomes that line's <c>ca</c>. The name exists only inside a network namespace the test creates (its own
/// /etc/netns/NS/hosts); the Airlock registry (<c>--tls-self-signed --tls-san NAME</c>) and containerd (on the
/// rendered config.toml) both run inside it, and the image is pulled through the CRI.
/// </summary>
public sealed class NamedRegistryContainerdTests : IAsyncLifetime
{
    private const string RegistryName = "registry.airlock.test";
    private readonly TempRoot _work = TempRoot.Create("airlock-named-");
    private NetworkNamespace? _network;
    private ServerProcess? _registry;
    private ContainerdProcess? _containerd;
    private TestImage? _image;

    private NetworkNamespace Network => _network ?? throw new InvalidOperationException("not started");

    private ContainerdProcess Containerd => _containerd ?? throw new InvalidOperationException("not started");

    private string RegistryData => Path.Combine(_work.Path, "registry");

    private string CaPath => Path.Combine(RegistryData, "registry", "tls", "ca.crt");

    public async Task InitializeAsync()
    {
        _network = await NetworkNamespace.CreateAsync(new Dictionary<string, string> { [RegistryName] = "127.0.0.1" });
        var airlockConfig = Path.Combine(_work.Path, "config.yaml");
        await File.WriteAllTextAsync(airlockConfig, "{}\n");
        _registry = Network.StartServer(RegistryProcess.AirlockCliPath(),
            ["registry", "--listen", "127.0.0.1:443", "--data-dir", RegistryData, "--tls-self-signed", "--tls-san", RegistryName],
            new Dictionary<string, string> { ["AIRLOCK_CONFIG"] = airlockConfig });
        await WaitUntilServingAsync();

        _image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "image"));
        var certs = Directory.CreateDirectory(Path.Combine(_work.Path, "certs")).FullName;
        File.Copy(CaPath, Path.Combine(certs, "ca.crt"));
        (await Network.RunAsync("skopeo", ["copy", "--quiet", "--dest-cert-dir", certs, _image.SourceReference, $"docker://{RegistryName}/app/named:1"]))
            .EnsureSuccess();

        _containerd = await ContainerdProcess.StartAsync(async locations =>
            (await RegistriesRender.RenderAsync(Path.Combine(locations.RootPath, "data"), RegistriesYaml(withCa: true), locations)).ConfigPath,
            Network.Exec);
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

        if (_network is not null)
        {
            await _network.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    [Fact]
    public async Task Named_registry_is_pulled_from_its_https_default_endpoint_trusting_the_ca_file_of_configs()
    {
        var reference = $"{RegistryName}/app/named:1";
        using var cri = CriImages.Connect(Containerd.Address);

        await cri.PullAsync(reference);

        var image = await cri.StatusAsync(reference);
        Assert.True(image is not null, $"{reference} is not in the CRI image store");
        Assert.Contains($"{RegistryName}/app/named@{_image!.Digest}", image.RepoDigests);

        // The rendering put the CA on the server line (no mirror is listed).
        var hostsToml = await File.ReadAllTextAsync(Path.Combine(Containerd.RootPath, "data", "agent", "etc", "containerd", "certs.d", RegistryName, "hosts.toml"));
        Assert.Contains($"server = \"https://{RegistryName}/v2\"", hostsToml, StringComparison.Ordinal);
        Assert.Contains($"ca = [\"{CaPath}\"]", hostsToml, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_the_ca_file_the_registry_certificate_is_refused()
    {
        var rendered = await RegistriesRender.RenderAsync(Path.Combine(_work.Path, "no-ca"), RegistriesYaml(withCa: false));

        // ctr resolves in its own process, so it runs inside the namespace too.
        var pull = await Network.RunAsync("ctr",
            ["--address", Containerd.Address, "-n", Containerd.Namespace, "images", "pull", "--hosts-dir", rendered.CertsDirectory, $"{RegistryName}/app/named:1"]);

        Assert.False(pull.Succeeded, pull.ToString());
        Assert.Contains("x509: certificate signed by unknown authority", pull.Stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// With the CA: only <c>configs.NAME.tls</c>. Without: the registry named under <c>mirrors</c> with its own
    /// https endpoint (folded into the server line), so the same hosts.toml is written minus the <c>ca</c>.
    /// </summary>
    private string RegistriesYaml(bool withCa) => withCa
        ? $"""
            configs:
              "{RegistryName}":
                tls:
                  ca_file: {CaPath}

            """
        : $"""
            mirrors:
              "{RegistryName}":
                endpoint:
                  - "https://{RegistryName}"

            """;

    private async Task WaitUntilServingAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            _registry!.EnsureRunning();
            if (File.Exists(CaPath))
            {
                var probe = await Network.RunAsync("curl", ["-sf", "-o", "/dev/null", "--cacert", CaPath, $"https://{RegistryName}/v2/"], TimeSpan.FromSeconds(5));
                if (probe.Succeeded)
                {
                    return;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"airlock registry in {Network.Name} did not answer https://{RegistryName}/v2/:\n{_registry.RecentOutput}");
            }

            await Task.Delay(100);
        }
    }
}
