using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Airlock.Interop.Tests.Fixtures;
using Grpc.Core;

namespace Airlock.Interop.Tests;

/// <summary>
/// What a node does with Airlock's rendering of a K3s <c>registries.yaml</c>: the real <c>airlock registries
/// render</c> writes certs.d and config.toml for the containerd release under test (Debian 12's 1.6 and, fetched
/// by scripts/fetch-containerd-versions.sh, 1.7 with the same config version 2 and 2.x with version 3), that
/// containerd is started on that config.toml, and images are pulled the kubelet's way (CRI PullImage), from upstreams played by Airlock and
/// distribution registries on loopback ports. Which registry served a pull is told by content: the mirror and
/// the upstream hold different images under the same tag, or the image exists on only one of them.
/// Negative checks use <c>ctr images pull --hosts-dir</c> on a second rendering (same resolver code, no
/// second daemon).
/// </summary>
public sealed class NodeRegistriesContainerd16Tests(NodeRegistriesContainerd16Tests.Fixture node)
    : NodeRegistriesContainerdTests(node), IClassFixture<NodeRegistriesContainerd16Tests.Fixture>
{
    public sealed class Fixture() : NodeRegistriesContainerdTests.Node(ContainerdRelease.Debian12);
}

public sealed class NodeRegistriesContainerd17Tests(NodeRegistriesContainerd17Tests.Fixture node)
    : NodeRegistriesContainerdTests(node), IClassFixture<NodeRegistriesContainerd17Tests.Fixture>
{
    public sealed class Fixture() : NodeRegistriesContainerdTests.Node(ContainerdRelease.Series17);
}

public sealed class NodeRegistriesContainerd2Tests(NodeRegistriesContainerd2Tests.Fixture node)
    : NodeRegistriesContainerdTests(node), IClassFixture<NodeRegistriesContainerd2Tests.Fixture>
{
    public sealed class Fixture() : NodeRegistriesContainerdTests.Node(ContainerdRelease.Series2);
}

public abstract class NodeRegistriesContainerdTests(NodeRegistriesContainerdTests.Node node)
{
    [Fact]
    public async Task Rendered_config_starts_containerd_with_the_CRI_plugin_and_certs_d_as_config_path()
    {
        var plugins = (await node.Containerd.CtrAsync(["plugins", "ls"])).EnsureSuccess();
        var cri = plugins.Stdout.Split('\n').SingleOrDefault(line => line.StartsWith("io.containerd.grpc.v1 ", StringComparison.Ordinal)
            && line.Contains(" cri ", StringComparison.Ordinal));
        Assert.True(cri is not null && cri.TrimEnd().EndsWith(" ok", StringComparison.Ordinal), plugins.Stdout);

        var config = await File.ReadAllTextAsync(node.ConfigPath);
        Assert.Contains($"config_path = \"{node.CertsDirectory}\"", config, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(node.CertsDirectory, "_default", "hosts.toml")), "\"*\" renders certs.d/_default");
    }

    [Fact]
    public async Task Mirror_serves_first_when_it_has_the_image()
    {
        var reference = $"{node.Upstream.Host}/app/same:1";

        await node.Cri.PullAsync(reference);

        // The upstream holds a different (Docker schema 2) image under the same tag: only the mirror has this digest.
        await AssertPulledAsync(reference, node.MirrorSameImage);
        Assert.NotEqual(node.MirrorSameImage.Digest, node.UpstreamSameImage.Digest);
    }

    [Fact]
    public async Task Default_endpoint_serves_when_the_mirror_lacks_the_image()
    {
        var reference = $"{node.Upstream.Host}/app/only-upstream:1";

        await node.Cri.PullAsync(reference);

        await AssertPulledAsync(reference, node.UpstreamOnlyImage);
    }

    [Fact]
    public async Task Mirror_down_falls_back_to_the_default_endpoint()
    {
        // registries.yaml lists only a closed port as the mirror of the Airlock registry's own name.
        var hostsToml = await File.ReadAllTextAsync(Path.Combine(node.CertsDirectory, node.Mirror.Host, "hosts.toml"));
        Assert.Contains($"[host.\"http://{node.ClosedHost}/v2\"]", hostsToml, StringComparison.Ordinal);
        var reference = $"{node.Mirror.Host}/app/only-mirror:1";

        await node.Cri.PullAsync(reference);

        await AssertPulledAsync(reference, node.MirrorOnlyImage);
    }

    [Fact]
    public async Task Wildcard_mirrors_a_registry_without_its_own_entry()
    {
        // Nothing listens on this registry's own address; only the "*" mirror (certs.d/_default) has the image.
        var unlisted = $"127.0.0.1:{node.UnlistedPort.ToString(CultureInfo.InvariantCulture)}";
        Assert.False(Directory.Exists(Path.Combine(node.CertsDirectory, unlisted)));
        var reference = $"{unlisted}/app/only-mirror:1";

        await node.Cri.PullAsync(reference);

        await AssertPulledAsync(reference, node.MirrorOnlyImage);
    }

    [Fact]
    public async Task Private_CA_from_tls_ca_file_verifies_airlocks_self_signed_registry()
    {
        var reference = $"{node.TlsRegistry.Host}/app/tls:1";

        await node.Cri.PullAsync(reference);
        await AssertPulledAsync(reference, node.TlsImage);

        // The same registries.yaml without the tls block: containerd does not know the CA and refuses the mirror
        // (the http default endpoint of a loopback name then fails on the HTTPS port too).
        var withoutTls = await node.RenderAsync("no-tls", node.RegistriesYaml(includeTls: false));
        var pull = await node.Containerd.PullAsync(reference, withoutTls);
        Assert.False(pull.Succeeded, pull.ToString());
        Assert.Contains("x509", pull.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_certificate_from_tls_cert_file_and_key_file_is_presented_to_a_registry_that_requires_one()
    {
        var reference = $"{node.ClientCertRegistry.Host}/app/mtls:1";

        await node.Cri.PullAsync(reference);
        await AssertPulledAsync(reference, node.ClientCertImage);

        // Same CA, no client certificate: the server (not the client's verification) ends the handshake.
        var withoutClient = await node.RenderAsync("no-client-cert", node.RegistriesYaml(includeTls: true, includeClientCertificate: false));
        var pull = await node.Containerd.PullAsync(reference, withoutClient);
        Assert.False(pull.Succeeded, pull.ToString());
        Assert.Contains("remote error: tls: bad certificate", pull.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("x509", pull.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Basic_auth_from_configs_reaches_the_registry_through_CRI()
    {
        var reference = $"{node.AuthRegistry.Host}/app/private:1";

        await node.Cri.PullAsync(reference);

        await AssertPulledAsync(reference, node.PrivateImage);
    }

    [Fact]
    public async Task Same_registry_under_a_name_without_configs_auth_answers_401()
    {
        // localhost:PORT is the same registry process, but configs holds credentials for 127.0.0.1:PORT only (containerd
        // looks them up by the host it is talking to). The "*" mirror lacks the image, so the default endpoint answers.
        var reference = $"localhost:{node.AuthRegistry.Port.ToString(CultureInfo.InvariantCulture)}/app/private:1";

        var failure = await node.Cri.PullFailureAsync(reference);

        // 1.6 names the status, 1.7 the missing credentials; 2.x reports the "*" mirror's not found instead.
        var reason = node.Release == ContainerdRelease.Series2 ? "not found" : node.Release == ContainerdRelease.Series17 ? "no basic auth credentials" : "401";
        Assert.True(failure.Status.Detail.Contains(reason, StringComparison.Ordinal), failure.Status.Detail);
        Assert.Null(await node.Cri.StatusAsync(reference));
    }

    [Fact]
    public async Task Rewrites_with_a_backslash_or_a_quote_are_written_as_TOML_this_containerd_parses()
    {
        // Registry names nothing listens on: only the mirror endpoint (which has the image under the name pulled, since
        // stock containerd ignores the rewrite table) can serve them.
        var escaped = $"127.0.0.1:{ServerProcess.FreeLoopbackPort().ToString(CultureInfo.InvariantCulture)}";
        var raw = $"127.0.0.1:{ServerProcess.FreeLoopbackPort().ToString(CultureInfo.InvariantCulture)}";
        var yaml = $"""
            mirrors:
              "{escaped}":
                endpoint:
                  - "{node.Mirror.Host}"
                rewrite:
                  '^app/(.*)\.v1$': 'app/$1'
                  '^say/"(.*)"$': 'quoted "$1"'
                  '^both$': "it's \"both\"\\"

            """;
        // --mirror-address off: K3s's own hosts.toml layout, rewrite table included, as for K3s's containerd.
        var certs = await node.RenderAsync("rewrites", yaml, "--mirror-address", "off");
        var hostsToml = await File.ReadAllTextAsync(Path.Combine(certs, escaped, "hosts.toml"));
        Assert.Contains("    '^app/(.*)\\.v1$' = \"app/$1\"\n    \"^both$\" = \"it's \\\"both\\\"\\\\\"\n    '^say/\"(.*)\"$' = 'quoted \"$1\"'\n",
            hostsToml, StringComparison.Ordinal);

        // containerd reads certs.d at every pull: the host takes effect by appearing in the node's certs.d.
        InstallHost(escaped, hostsToml);
        var reference = $"{escaped}/app/only-mirror:1";
        await node.Cri.PullAsync(reference);
        await AssertPulledAsync(reference, node.MirrorOnlyImage);

        // The same file as K3s writes it, rewrites inserted raw, is not TOML: this containerd drops it and goes to the
        // registry itself (nothing listens there) instead of the mirror, the fail-open the quoting prevents.
        InstallHost(raw, hostsToml.Replace(escaped, raw, StringComparison.Ordinal)
            .Replace("'^app/(.*)\\.v1$'", "\"^app/(.*)\\.v1$\"", StringComparison.Ordinal)
            .Replace("'^say/\"(.*)\"$' = 'quoted \"$1\"'", "\"^say/\"(.*)\"$\" = \"quoted \"$1\"\"", StringComparison.Ordinal));
        var failure = await node.Cri.PullFailureAsync($"{raw}/app/only-mirror:1");
        Assert.Contains($"//{raw}/v2/", failure.Status.Detail, StringComparison.Ordinal);
        Assert.Null(await node.Cri.StatusAsync($"{raw}/app/only-mirror:1"));
    }

    private void InstallHost(string registry, string hostsToml)
    {
        var directory = Directory.CreateDirectory(Path.Combine(node.CertsDirectory, registry)).FullName;
        File.WriteAllText(Path.Combine(directory, "hosts.toml"), hostsToml);
    }

    private async Task AssertPulledAsync(string reference, TestImage expected)
    {
        var image = await node.Cri.StatusAsync(reference);
        Assert.True(image is not null, $"{reference} is not in the CRI image store");
        var repository = reference[..reference.LastIndexOf(':')];
        Assert.Contains($"{repository}@{expected.Digest}", image.RepoDigests);
        Assert.Contains(reference, image.RepoTags);
    }

    /// <summary>
    /// One containerd on the rendered config for the whole class (a CRI containerd takes a few seconds to start),
    /// and the registries it pulls from. Every test pulls a reference of its own, so they do not see each other's
    /// images.
    /// </summary>
    public abstract class Node(ContainerdRelease release) : IAsyncLifetime
    {
        public ContainerdRelease Release => release;

        private static readonly RegistryCredentials Robot = new("robot", "s3cret-pull");
        private readonly TempRoot _work = TempRoot.Create("airlock-noderegs-");
        private readonly List<IAsyncDisposable> _started = [];
        private ContainerdProcess? _containerd;
        private CriImages? _cri;

        public ContainerdProcess Containerd => _containerd ?? throw new InvalidOperationException("not started");

        internal CriImages Cri => _cri ?? throw new InvalidOperationException("not started");

        /// <summary>Airlock registry, plain HTTP: the mirror (of the upstream and, via "*", of every other registry).</summary>
        public RegistryProcess Mirror { get; private set; } = null!;

        /// <summary>distribution, plain HTTP: the registry the image names point at (its default endpoint).</summary>
        public RegistryProcess Upstream { get; private set; } = null!;

        /// <summary>Airlock registry with <c>--tls-self-signed</c>.</summary>
        public RegistryProcess TlsRegistry { get; private set; } = null!;

        /// <summary>distribution with TLS and <c>http.tls.clientcas</c>.</summary>
        public RegistryProcess ClientCertRegistry { get; private set; } = null!;

        /// <summary>Airlock registry with an htpasswd user: every request needs credentials.</summary>
        public RegistryProcess AuthRegistry { get; private set; } = null!;

        public TestImage MirrorSameImage { get; private set; } = null!;

        public TestImage UpstreamSameImage { get; private set; } = null!;

        public TestImage MirrorOnlyImage { get; private set; } = null!;

        public TestImage UpstreamOnlyImage { get; private set; } = null!;

        public TestImage TlsImage { get; private set; } = null!;

        public TestImage ClientCertImage { get; private set; } = null!;

        public TestImage PrivateImage { get; private set; } = null!;

        // Held for the fixture's life: a port only seen free was once given to one of its own registries, and
        // "nothing listens there" failed.
        private readonly Socket _closedPort = ServerProcess.ReserveClosedLoopbackPort();
        private readonly Socket _unlistedPort = ServerProcess.ReserveClosedLoopbackPort();

        /// <summary>A loopback port nothing listens on: the mirror that is down.</summary>
        public int ClosedPort => ((IPEndPoint)_closedPort.LocalEndPoint!).Port;

        public string ClosedHost => $"127.0.0.1:{ClosedPort.ToString(CultureInfo.InvariantCulture)}";

        /// <summary>A registry named in no entry of registries.yaml (and nothing listens there either).</summary>
        public int UnlistedPort => ((IPEndPoint)_unlistedPort.LocalEndPoint!).Port;

        public string ConfigPath { get; private set; } = null!;

        public string CertsDirectory { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            try
            {
                await StartAsync();
            }
            catch
            {
                // xunit does not dispose a fixture whose start failed: stop what did start.
                await DisposeAsync();
                throw;
            }
        }

        private async Task StartAsync()
        {
            var mirror = StartRegistryAsync(RegistryKind.Airlock, new RegistryOptions());
            var upstream = StartRegistryAsync(RegistryKind.Distribution, new RegistryOptions());
            var tls = StartRegistryAsync(RegistryKind.Airlock, new RegistryOptions { SelfSignedTls = true });
            var clientCert = StartRegistryAsync(RegistryKind.Distribution, new RegistryOptions { Tls = true, RequireClientCertificates = true });
            var auth = StartRegistryAsync(RegistryKind.Airlock, new RegistryOptions { RequiredCredentials = Robot });
            (Mirror, Upstream, TlsRegistry, ClientCertRegistry, AuthRegistry) = (await mirror, await upstream, await tls, await clientCert, await auth);

            // Two different images: the runnable one as OCI and as Docker schema 2 have different digests.
            var oci = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "oci"));
            var docker = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "docker"), ImageFlavor.Docker);
            await Task.WhenAll(
                PushAsync(oci, Mirror, "app/same:1"),
                PushAsync(docker, Upstream, "app/same:1"),
                PushAsync(oci, Mirror, "app/only-mirror:1"),
                PushAsync(docker, Upstream, "app/only-upstream:1"),
                PushAsync(oci, TlsRegistry, "app/tls:1"),
                PushAsync(docker, ClientCertRegistry, "app/mtls:1"),
                PushAsync(oci, AuthRegistry, "app/private:1", ["--dest-creds", Robot.CredsArgument]));
            (MirrorSameImage, UpstreamSameImage, MirrorOnlyImage, UpstreamOnlyImage) = (oci, docker, oci, docker);
            (TlsImage, ClientCertImage, PrivateImage) = (oci, docker, oci);

            _containerd = await ContainerdProcess.StartAsync(async locations =>
            {
                var rendered = await RegistriesRender.RenderAsync(Path.Combine(locations.RootPath, "data"), RegistriesYaml(includeTls: true), locations, release.Series);
                (CertsDirectory, ConfigPath) = (rendered.CertsDirectory, rendered.ConfigPath);
                return ConfigPath;
            }, release.Launcher());
            _cri = CriImages.Connect(Containerd.Address);
        }

        /// <summary>
        /// The registries.yaml of this class. Endpoints are written as users write them (a bare host:port for the
        /// plain HTTP ones: Airlock's normalisation makes loopback http).
        /// </summary>
        public string RegistriesYaml(bool includeTls, bool includeClientCertificate = true)
        {
            var yaml = $"""
                mirrors:
                  "{Upstream.Host}":
                    endpoint:
                      - "{Mirror.Host}"
                  "{Mirror.Host}":
                    endpoint:
                      - "{ClosedHost}"
                  "*":
                    endpoint:
                      - "{Mirror.Host}"
                  "{TlsRegistry.Host}":
                    endpoint:
                      - "https://{TlsRegistry.Host}"
                  "{ClientCertRegistry.Host}":
                    endpoint:
                      - "https://{ClientCertRegistry.Host}"
                configs:
                  "{AuthRegistry.Host}":
                    auth:
                      username: {Robot.Username}
                      password: {Robot.Password}

                """;
            if (includeTls)
            {
                yaml += $"""
                      "{TlsRegistry.Host}":
                        tls:
                          ca_file: {TlsRegistry.CaPath}
                      "{ClientCertRegistry.Host}":
                        tls:
                          ca_file: {ClientCertRegistry.CaPath}

                    """;
                if (includeClientCertificate)
                {
                    yaml += $"""
                              cert_file: {ClientCertRegistry.ClientCertificatePath}
                              key_file: {ClientCertRegistry.ClientKeyPath}

                        """;
                }
            }

            return yaml;
        }

        /// <summary>Renders <paramref name="yaml"/> into a data dir of its own under this class's temp folder; returns its certs.d.</summary>
        public async Task<string> RenderAsync(string name, string yaml, params string[] extraArguments) =>
            (await RegistriesRender.RenderAsync(Path.Combine(_work.Path, name), yaml, extraArguments: extraArguments)).CertsDirectory;

        public async Task DisposeAsync()
        {
            _cri?.Dispose();
            if (_containerd is not null)
            {
                await _containerd.DisposeAsync();
            }

            foreach (var started in _started)
            {
                await started.DisposeAsync();
            }

            _work.UnmountAndDelete();
            _closedPort.Dispose();
            _unlistedPort.Dispose();
        }

        private async Task<RegistryProcess> StartRegistryAsync(RegistryKind kind, RegistryOptions options)
        {
            var registry = await RegistryProcess.StartAsync(kind, options);
            lock (_started)
            {
                _started.Add(registry);
            }

            return registry;
        }

        private static async Task PushAsync(TestImage image, RegistryProcess registry, string repositoryAndTag, IEnumerable<string>? extra = null) =>
            (await Skopeo.PushAsync(image, registry, repositoryAndTag, extra)).EnsureSuccess();
    }
}
