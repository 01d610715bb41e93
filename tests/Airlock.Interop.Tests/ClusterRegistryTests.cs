using System.Globalization;
using System.Net;
using Airlock.Cluster;
using Airlock.Cluster.Join;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Supervisor;
using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// <c>airlock server --embedded-registry</c> with a joined node pulling through the real containerd, its hosts.toml pointing
/// at the node's own files under <c>&lt;data-dir&gt;/agent/</c>: the client certificate is the only credential (there is no
/// password), and it keeps working across <c>certificate rotate</c> and <c>rotate-ca</c>, before and after the node renews.
/// </summary>
public sealed class ClusterRegistryTests : IAsyncLifetime
{
    private readonly TempRoot _work = TempRoot.Create("airlock-cluster-registry-");
    private ClusterServer? _server;
    private ClusterMember? _member;
    private ContainerdProcess? _containerd;
    private IPEndPoint _supervisor = new(IPAddress.Loopback, 0);
    private IPEndPoint _registry = new(IPAddress.Loopback, 0);

    private string Data => Path.Combine(_work.Path, "server");

    private ServerDirectory Directory => new(Data);

    private ContainerdProcess Containerd => _containerd ?? throw new InvalidOperationException("not started");

    private string RegistryHost => $"127.0.0.1:{_registry.Port.ToString(CultureInfo.InvariantCulture)}";

    public async Task InitializeAsync()
    {
        await StartServerAsync();
        _containerd = await ContainerdProcess.StartAsync();
    }

    public async Task DisposeAsync()
    {
        _member?.Dispose();
        if (_containerd is not null)
        {
            await _containerd.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    [Fact]
    public async Task A_joined_node_pulls_with_its_client_certificate_across_rotation_and_CA_rotation()
    {
        var token = File.ReadAllText(Directory.Token).Trim();
        _member = await ClusterMember.StartAsync(new ClusterMemberOptions
        {
            Server = _server!.Address,
            Token = token,
            DataDirectory = Path.Combine(_work.Path, "node"),
            NodeName = "worker-1",
            Addresses = [IPAddress.Loopback],
        }, CancellationToken.None);
        var agent = new AgentDirectory(Path.Combine(_work.Path, "node"));

        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "image"));
        await PushAsync(image, "app/one:1");
        var withCertificate = HostsDirectory("with-certificate", agent, clientCertificate: true);
        var withoutCertificate = HostsDirectory("without-certificate", agent, clientCertificate: false);

        (await Containerd.PullAsync($"{RegistryHost}/app/one:1", withCertificate)).EnsureSuccess();
        var anonymous = await Containerd.PullAsync($"{RegistryHost}/app/one:1", withoutCertificate);
        Assert.False(anonymous.Succeeded, anonymous.ToString());
        Assert.Contains("403", anonymous.Output, StringComparison.Ordinal);

        // certificate rotate: new server certificates, same CAs; the node's files are untouched.
        await RestartServerAsync(() => CertificateRotation.Rotate(new ServerPkiOptions { Directory = Directory }, []));
        await PushAsync(image, "app/two:1");
        (await Containerd.PullAsync($"{RegistryHost}/app/two:1", withCertificate)).EnsureSuccess();

        // certificate rotate-ca: the node still has only the old CAs and a certificate from the old client CA.
        var oldClient = File.ReadAllText(agent.ClientCertificate);
        await RestartServerAsync(() => CertificateRotation.RotateCa(new ServerPkiOptions { Directory = Directory }, path: null));
        await PushAsync(image, "app/three:1");
        (await Containerd.PullAsync($"{RegistryHost}/app/three:1", withCertificate)).EnsureSuccess();
        Assert.Equal(oldClient, File.ReadAllText(agent.ClientCertificate));

        // The next heartbeat learns the new CA and renews; the same hosts.toml (same paths) pulls with the new files.
        await _member.BeatAsync(CancellationToken.None);
        Assert.NotEqual(oldClient, File.ReadAllText(agent.ClientCertificate));
        Assert.Equal(_server!.Pki.ClientCa.Signer.Subject, _member.Credentials.ClientCertificate.Issuer);
        await PushAsync(image, "app/four:1");
        (await Containerd.PullAsync($"{RegistryHost}/app/four:1", withCertificate)).EnsureSuccess();
        await Openssl.VerifyAsync(agent.ClientCa, agent.ClientCertificate, "sslclient");
        await Openssl.VerifyAsync(agent.ServerCa, agent.ServingCertificate, "sslserver");
        await Openssl.VerifyAsync(agent.ServerCa, Path.Combine(Directory.Tls, "registry.crt"), "sslserver");
    }

    private async Task StartServerAsync()
    {
        _server = await ClusterServer.StartAsync(new ClusterServerOptions
        {
            DataDirectory = Data,
            Listen = _supervisor,
            EmbeddedRegistry = _registry,
            NodeName = "test-server",
        }, CancellationToken.None);
        _supervisor = new IPEndPoint(IPAddress.Loopback, _server.Address.Port);
        _registry = new IPEndPoint(IPAddress.Loopback, _server.Registry!.Address.Port);
    }

    private async Task RestartServerAsync(Action whileStopped)
    {
        await _server!.DisposeAsync();
        _server = null;
        whileStopped();
        await StartServerAsync();
    }

    /// <summary>Pushes as the operator: skopeo with <c>server/tls/client-admin.crt</c>.</summary>
    private async Task PushAsync(TestImage image, string repositoryAndTag)
    {
        var certs = System.IO.Directory.CreateDirectory(Path.Combine(_work.Path, "admin-certs")).FullName;
        File.Copy(Path.Combine(Directory.Tls, "server-ca.crt"), Path.Combine(certs, "ca.crt"), overwrite: true);
        File.Copy(Path.Combine(Directory.Tls, "client-admin.crt"), Path.Combine(certs, "client.cert"), overwrite: true);
        File.Copy(Path.Combine(Directory.Tls, "client-admin.key"), Path.Combine(certs, "client.key"), overwrite: true);
        (await Skopeo.RunAsync(["copy", "--quiet", "--dest-cert-dir", certs, image.SourceReference, $"docker://{RegistryHost}/{repositoryAndTag}"])).EnsureSuccess();
    }

    /// <summary>certs.d/HOST/hosts.toml trusting the node's server CA bundle and, optionally, presenting its client certificate.</summary>
    private string HostsDirectory(string name, AgentDirectory agent, bool clientCertificate)
    {
        var certsD = Path.Combine(_work.Path, name);
        var host = System.IO.Directory.CreateDirectory(Path.Combine(certsD, RegistryHost)).FullName;
        var client = clientCertificate ? $"  client = [[\"{agent.ClientCertificate}\", \"{agent.ClientKey}\"]]\n" : string.Empty;
        File.WriteAllText(Path.Combine(host, "hosts.toml"), $"""
            server = "https://{RegistryHost}"

            [host."https://{RegistryHost}"]
              capabilities = ["pull", "resolve"]
              ca = "{agent.ServerCa}"
            {client}
            """);
        return certsD;
    }
}
