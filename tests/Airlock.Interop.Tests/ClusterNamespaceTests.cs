using System.Globalization;
using System.Text.Json;
using Airlock.Cluster;
using Airlock.Cluster.Membership;
using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// A cluster of four machines on a private network the test builds (<see cref="ClusterNetwork"/>): <c>airlock server</c> in
/// one namespace, <c>airlock agent --server https://10.213.0.1:9443 --token-file …</c> in three others (the built CLI, each in
/// its own network namespace, all using one containerd through its socket). Every agent joins and shows in
/// <c>airlock node list</c>; the server is killed (SIGKILL) and started again, and every agent comes back by itself.
/// </summary>
public sealed class ClusterNamespaceTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly TempRoot _work = TempRoot.Create("airlock-cluster-ns-");
    private readonly List<ServerProcess> _agents = [];
    private ClusterNetwork? _network;
    private ContainerdProcess? _containerd;
    private ServerProcess? _server;

    private string ServerData => Path.Combine(_work.Path, "server");

    private string Config => Path.Combine(_work.Path, "config.yaml");

    private IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["AIRLOCK_CONFIG"] = Config };

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(Config, "{}\n");
        _network = await ClusterNetwork.CreateAsync(4);
        _containerd = await ContainerdProcess.StartAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var agent in _agents)
        {
            await agent.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        if (_containerd is not null)
        {
            await _containerd.DisposeAsync();
        }

        if (_network is not null)
        {
            await _network.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    [Fact]
    public async Task A_server_and_three_agents_in_their_own_namespaces_join_by_token_and_come_back_after_the_server_is_killed()
    {
        var network = _network!;
        StartServer();
        var token = Path.Combine(ServerData, "server", "token");
        await WaitAsync(() => File.Exists(token), "the server to write its token");

        // What the agent does without --server it still does with it: the first node has an archive in its images directory.
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "image"));
        var imageName = $"registry.airlock.test/cluster/app:{Guid.NewGuid().ToString("N")[..8]}";

        var names = new List<string>();
        for (var i = 1; i <= 3; i++)
        {
            var name = $"node-{Guid.NewGuid().ToString("N")[..6]}";
            names.Add(name);
            var data = Path.Combine(_work.Path, name);
            var images = Directory.CreateDirectory(Path.Combine(data, "images")).FullName;
            if (i == 1)
            {
                (await Skopeo.RunAsync(["copy", "--quiet", image.SourceReference, $"docker-archive:{Path.Combine(images, "app.tar")}:{imageName}"])).EnsureSuccess();
            }

            _agents.Add(network.Nodes[i].Start(RegistryProcess.AirlockCliPath(),
            [
                "agent", "--server", $"https://{network.Nodes[0].Address}:9443", "--token-file", token, "--data-dir", data,
                "--containerd-socket", _containerd!.Address, "--images-dir", images, "--node-name", name,
                "--node-label", $"example.com/index={i.ToString(CultureInfo.InvariantCulture)}",
            ], Environment));
        }

        var joined = await WaitForNodesAsync(names, since: null);
        foreach (var (name, index) in names.Select((n, i) => (n, i + 1)))
        {
            var node = joined.Single(n => n.Name == name);
            Assert.Equal([network.Nodes[index].Address.ToString()], node.Addresses);
            Assert.Equal(index.ToString(CultureInfo.InvariantCulture), node.Labels["example.com/index"]);
            var agent = new AgentDirectory(Path.Combine(_work.Path, name));
            await Openssl.VerifyAsync(agent.ClientCa, agent.ClientCertificate, "sslclient");
            await Openssl.VerifyAsync(agent.ServerCa, agent.ServingCertificate, "sslserver");
        }

        var imported = false;
        await WaitAsync(() => imported, $"the first agent to import {imageName} from its images directory", poll: async () =>
        {
            var list = await Tool.RunAsync("ctr", ["--address", _containerd!.Address, "-n", "k8s.io", "images", "ls", "-q"]);
            imported = list.Succeeded && list.Stdout.Split('\n').Contains(imageName);
        });

        var listing = await Tool.RunAsync(RegistryProcess.AirlockCliPath(), ["node", "list", "--data-dir", ServerData, "--output", "json"], environment: Environment);
        listing.EnsureSuccess();
        using (var json = JsonDocument.Parse(listing.Stdout))
        {
            Assert.Equal(names.Order(), json.RootElement.EnumerateArray().Select(n => n.GetProperty("name").GetString()!).Order());
        }

        // Killed, not stopped: the agents notice nothing but failing heartbeats, and come back once a server answers again.
        Assert.True(Signals.Send(_server!.Pid, Signals.Kill));
        await WaitAsync(() => _server.HasExited, "the killed server to exit", checkServer: false);
        var restarted = DateTimeOffset.UtcNow;
        StartServer();
        await WaitForNodesAsync(names, since: restarted);
        Assert.All(_agents, agent => agent.EnsureRunning());
    }

    private void StartServer() =>
        _server = _network!.Nodes[0].Start(RegistryProcess.AirlockCliPath(),
            ["server", "--data-dir", ServerData, "--node-name", "server-0", "--heartbeat-interval", "1s"], Environment);

    /// <summary>Waits until every one of <paramref name="names"/> is Ready with a heartbeat after <paramref name="since"/>.</summary>
    private async Task<IReadOnlyList<ClusterNode>> WaitForNodesAsync(IReadOnlyList<string> names, DateTimeOffset? since)
    {
        IReadOnlyList<ClusterNode> nodes = [];
        await WaitAsync(() =>
        {
            nodes = Directory.Exists(Path.Combine(ServerData, "server", "nodes")) ? MembershipStore.Open(new ServerDirectory(ServerData), TimeProvider.System).List() : [];
            // The server records a join before it answers; the agent keeps its identity after: membership.json, written last.
            return names.All(name => nodes.Any(n => n.Name == name && n.Status == NodeStatus.Ready && (since is null || n.LastSeen > since))
                && File.Exists(new AgentDirectory(Path.Combine(_work.Path, name)).Membership));
        }, $"nodes {string.Join(", ", names)} to be Ready{(since is null ? "" : " again")}");
        return nodes;
    }

    private async Task WaitAsync(Func<bool> condition, string what, bool checkServer = true, Func<Task>? poll = null)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (true)
        {
            if (poll is not null)
            {
                await poll();
            }

            if (condition())
            {
                return;
            }

            if (checkServer)
            {
                _server?.EnsureRunning();
            }

            foreach (var agent in _agents)
            {
                agent.EnsureRunning();
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited {Deadline.TotalSeconds:0}s for {what}\nserver:\n{_server?.RecentOutput}\n"
                    + string.Join("\n", _agents.Select(a => $"agent {a.Pid}:\n{a.RecentOutput}")));
            }

            await Task.Delay(200);
        }
    }
}
