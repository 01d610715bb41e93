using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.Interop.Tests.Fixtures;

namespace Airlock.Interop.Tests;

/// <summary>
/// The peer-to-peer mirror on a private network the test builds (<see cref="ClusterNetwork"/>): <c>airlock server</c> in one
/// namespace, <c>airlock registry</c> in another, and four nodes, each a namespace running <c>airlock agent --server …
/// --embedded-registry</c> with the containerd it supervises (the built CLI, stock containerd 1.6). Every node pulls one
/// 208 MiB, four-layer image (generated here, deterministic) at the same moment, released by one gate; every layer lands
/// in every containerd, and the registry's egress (its veth's transmitted bytes) stays near one image, not four.
/// Then peers that fail: one that serves corrupted bytes, one killed in the middle of a transfer, one that is asked
/// for a private registry's blob by a node without credentials.
/// </summary>
public sealed class PeerToPeerTests : IAsyncLifetime
{
    private const int Nodes = 4;
    private const int LayerCount = 4;
    private const int LayerSize = 52 << 20;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);
    private readonly TempRoot _work = TempRoot.Create("airlock-p2p-");
    private readonly List<ServerProcess> _agents = [];
    private ClusterNetwork? _network;
    private ServerProcess? _server;
    private ServerProcess? _registry;

    private ClusterNetwork Network => _network ?? throw new InvalidOperationException("not started");

    private NetworkNode RegistryNode => Network.Nodes[1];

    private string Registry => $"{RegistryNode.Address}:5000";

    private string ServerData => Path.Combine(_work.Path, "server");

    private string Config => Path.Combine(_work.Path, "config.yaml");

    private IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["AIRLOCK_CONFIG"] = Config };

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(Config, "{}\n");
        // server, registry, four nodes, two spare nodes for the faulty peers, one for --p2p-share-tags and one that joins late.
        _network = await ClusterNetwork.CreateAsync(2 + Nodes + 4);
        _server = Network.Nodes[0].Start(RegistryProcess.AirlockCliPath(),
            ["server", "--data-dir", ServerData, "--node-name", "server-0", "--heartbeat-interval", "1s"], Environment);
        _registry = RegistryNode.Start(RegistryProcess.AirlockCliPath(),
            ["registry", "--listen", $"{Registry}", "--data-dir", Path.Combine(_work.Path, "registry")], Environment);
        await WaitAsync(() => File.Exists(Path.Combine(ServerData, "server", "token")), "the server to write its token");
        // The first push goes there: on a loaded machine the registry may not be listening yet when the server is.
        await WaitAsync(async () => (await RegistryNode.RunAsync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", $"http://{Registry}/v2/"])).Stdout.Trim() == "200",
            "the registry to listen");
    }

    public async Task DisposeAsync()
    {
        foreach (var agent in _agents)
        {
            await agent.StopAsync(TimeSpan.FromSeconds(20));
            await agent.DisposeAsync();
        }

        foreach (var process in new[] { _registry, _server })
        {
            if (process is not null)
            {
                await process.DisposeAsync();
            }
        }

        _work.UnmountAndDelete();
        if (_network is not null)
        {
            await _network.DisposeAsync();
        }
    }

    [Fact]
    public async Task Four_nodes_pulling_one_image_at_once_get_every_layer_while_the_registry_sends_it_about_once_and_failing_peers_are_bypassed()
    {
        var image = await WriteImageAsync(Path.Combine(_work.Path, "big"), "big", LayerCount, LayerSize, seed: 1);
        await PushAsync(image, "p2p/big:1");
        var nodes = Enumerable.Range(0, Nodes).Select(i => StartNode(Network.Nodes[2 + i], $"node-{i}")).ToList();
        await WaitForPeersAsync(nodes, Nodes - 1);

        var before = await TransmittedAsync(RegistryNode);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pulls = nodes.Select(async node =>
        {
            await gate.Task;
            return await PullAsync(node, $"{Registry}/p2p/big:1");
        }).ToList();
        gate.SetResult();
        var results = await Task.WhenAll(pulls);
        var egress = await TransmittedAsync(RegistryNode) - before;

        foreach (var (node, result) in nodes.Zip(results))
        {
            Assert.True(result.Succeeded, $"{node.Name}: {result}\n{node.Process.RecentOutput}");
            await AssertHoldsAsync(node, image);
        }

        // Without peers the registry sends the image once per node (4 × 208 MiB); with them about once.
        Assert.True(egress < image.Size * 3 / 2,
            $"the registry sent {egress} bytes for a {image.Size}-byte image pulled by {Nodes} nodes\n" + string.Join("\n", nodes.Select(n => n.Process.RecentOutput)));
        var statuses = await Task.WhenAll(nodes.Select(StatusAsync));
        var fromPeers = statuses.Sum(s => s.GetProperty("bytesFromPeers").GetInt64());
        Assert.True(fromPeers >= image.Size * (Nodes - 2), $"peers delivered {fromPeers} bytes");
        // Every node lists its three peers; one may show "down" when, on a loaded machine, it missed the peer bound once.
        Assert.All(statuses, s => Assert.Equal(Nodes - 1, s.GetProperty("peers").EnumerateArray().Count(p => p.GetProperty("state").GetString() is "ready" or "down")));
        var metrics = await nodes[0].Namespace.RunAsync("curl", ["-sf", "http://127.0.0.1:5100/metrics"]);
        Assert.Contains("airlock_p2p_bytes_from_peers_total", metrics.EnsureSuccess().Stdout, StringComparison.Ordinal);

        await A_peer_serving_corrupted_bytes_is_detected_logged_and_bypassed(nodes[0]);
        await A_peer_killed_mid_transfer_costs_at_most_the_peer_timeout(nodes[1]);
        await A_private_registrys_blob_is_served_only_to_a_node_with_its_credentials(nodes[2], nodes[3], image.Layers[0]);
        await A_peers_stale_tag_is_used_only_with_share_tags(nodes[0], nodes[1]);
        await Containerd_content_is_shared_and_the_p2p_store_keeps_no_second_copy(nodes, image);
    }

    /// <summary>
    /// Once containerd holds a blob the p2p store drops its copy, and peers are served from containerd's content store:
    /// a node that joins late gets the big image from the others with none of them holding it in a p2p store; and an image
    /// a node imported from its images directory (never through its mirror) is served to the others from its containerd
    /// once the registry confirms the node may read it.
    /// </summary>
    private async Task Containerd_content_is_shared_and_the_p2p_store_keeps_no_second_copy(IReadOnlyList<AgentNode> nodes, GeneratedImage big)
    {
        foreach (var node in nodes)
        {
            await WaitAsync(() => !big.Layers.Any(layer => InP2pStore(node, layer)), $"{node.Name}'s p2p store to drop the layers containerd holds");
        }

        var imported = await WriteImageAsync(Path.Combine(_work.Path, "imported"), "imported", 2, 4 << 20, seed: 6);
        await PushAsync(imported, "p2p/imported:1");
        var lateImages = Directory.CreateDirectory(Path.Combine(_work.Path, "late", "images")).FullName;
        var archive = Path.Combine(_work.Path, "imported.tar");
        (await Tool.RunAsync("skopeo", ["copy", "--quiet", $"oci:{imported.Layout}:{imported.Tag}", $"docker-archive:{archive}:{Registry}/p2p/imported:1"],
            TimeSpan.FromSeconds(120), Tool.HermeticContainersEnvironment)).EnsureSuccess();
        File.Move(archive, Path.Combine(lateImages, "imported.tar"));
        var late = StartNode(Network.Nodes[5 + Nodes], "late");
        await WaitForPeersAsync([late], Nodes);
        foreach (var layer in imported.Layers)
        {
            await WaitAsync(() => AdvertisedAsync(nodes[0], late.Name, layer), $"{late.Name} to advertise the imported {layer}");
        }

        // The puller's own peer list (read every 2 s) must show it too, or it would plan without the holder.
        await WaitAsync(async () => (await StatusAsync(nodes[0])).GetProperty("peers").EnumerateArray()
            .Any(p => p.GetProperty("name").GetString() == late.Name && p.GetProperty("holds").GetInt32() >= imported.Layers.Count), $"{nodes[0].Name} to see {late.Name} holding the imported layers");

        // Asked for the layer under a repository the registry does not let this node read it from, the holder does not
        // serve it from containerd (the label alone does not say which credentials fetched it).
        var unconfirmed = await CurlAsPeerAsync(nodes[1], $"https://{late.Namespace.Address}:5001/v2/p2p/elsewhere/blobs/{imported.Layers[0]}?ns={Registry}");
        Assert.Equal("404", unconfirmed.Stdout.Trim());
        Assert.Contains("the registry does not confirm", late.Process.RecentOutput, StringComparison.Ordinal);

        var fromPeersBefore = (await StatusAsync(nodes[0])).GetProperty("bytesFromPeers").GetInt64();
        var before = await TransmittedAsync(RegistryNode);
        var importedPull = await PullAsync(nodes[0], $"{Registry}/p2p/imported:1");
        var importedEgress = await TransmittedAsync(RegistryNode) - before;

        Assert.True(importedPull.Succeeded, importedPull + "\n" + nodes[0].Process.RecentOutput);
        await AssertHoldsAsync(nodes[0], imported);
        Assert.False(imported.Layers.Any(layer => InP2pStore(late, layer)), "the imported layers are served from containerd, not copied into the p2p store");
        var fromPeers = (await StatusAsync(nodes[0])).GetProperty("bytesFromPeers").GetInt64() - fromPeersBefore;
        Assert.True(fromPeers >= 2L * (4 << 20), $"{nodes[0].Name} got {fromPeers} bytes from peers for the imported image\n{late.Process.RecentOutput}\n{nodes[0].Process.RecentOutput}");
        Assert.True(importedEgress < imported.Size / 2, $"the registry sent {importedEgress} bytes for the {imported.Size}-byte imported image");

        before = await TransmittedAsync(RegistryNode);
        var bigPull = await PullAsync(late, $"{Registry}/p2p/big:1");
        var bigEgress = await TransmittedAsync(RegistryNode) - before;

        Assert.True(bigPull.Succeeded, bigPull + "\n" + late.Process.RecentOutput);
        await AssertHoldsAsync(late, big);
        Assert.True(bigEgress < big.Size / 4, $"the registry sent {bigEgress} bytes for the {big.Size}-byte image the peers' containerd held\n{late.Process.RecentOutput}");
        Assert.True((await StatusAsync(late)).GetProperty("bytesFromPeers").GetInt64() >= big.Size * 9 / 10, late.Process.RecentOutput);
    }

    /// <summary>Whether the node's p2p store (<c>&lt;data-dir&gt;/agent/p2p</c>) has a file of the blob.</summary>
    private static bool InP2pStore(AgentNode node, string digest)
    {
        var store = Path.Combine(node.Data, "agent", "p2p");
        return Directory.Exists(store) && Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories).Any(f => f.Contains(digest[7..], StringComparison.Ordinal));
    }

    /// <summary>
    /// A peer that resolved a tag before the registry moved it holds a stale answer: a node without --p2p-share-tags
    /// resolves the tag at the registry (the new image), one with it takes the peer's answer (the old image).
    /// </summary>
    private async Task A_peers_stale_tag_is_used_only_with_share_tags(AgentNode holder, AgentNode without)
    {
        var old = await WriteImageAsync(Path.Combine(_work.Path, "tag-old"), "latest", 1, 1 << 20, seed: 4);
        var current = await WriteImageAsync(Path.Combine(_work.Path, "tag-new"), "latest", 1, 1 << 20, seed: 5);
        await PushAsync(old, "p2p/tagged:latest");
        Assert.True((await PullAsync(holder, $"{Registry}/p2p/tagged:latest")).Succeeded);
        await PushAsync(current, "p2p/tagged:latest");
        var sharing = StartNode(Network.Nodes[4 + Nodes], "share-tags", extra: ["--p2p-share-tags"]);
        await WaitForPeersAsync([sharing], Nodes);

        var fromPeer = await PullAsync(sharing, $"{Registry}/p2p/tagged:latest");
        var fromRegistry = await PullAsync(without, $"{Registry}/p2p/tagged:latest");

        Assert.True(fromPeer.Succeeded, fromPeer + "\n" + sharing.Process.RecentOutput);
        Assert.True(fromRegistry.Succeeded, fromRegistry + "\n" + without.Process.RecentOutput);
        Assert.Contains(old.Manifest, await ContentAsync(sharing), StringComparison.Ordinal);
        Assert.DoesNotContain(current.Manifest, await ContentAsync(sharing), StringComparison.Ordinal);
        Assert.Contains($"resolved by peer {holder.Name}", sharing.Process.RecentOutput, StringComparison.Ordinal);
        Assert.Contains(current.Manifest, await ContentAsync(without), StringComparison.Ordinal);
        Assert.DoesNotContain(old.Manifest, await ContentAsync(without), StringComparison.Ordinal);
    }

    private static async Task<string> ContentAsync(AgentNode node) =>
        (await node.Namespace.RunAsync("ctr", ["--address", node.Socket, "-n", "k8s.io", "content", "ls", "-q"])).EnsureSuccess().Stdout;

    private async Task A_peer_serving_corrupted_bytes_is_detected_logged_and_bypassed(AgentNode puller)
    {
        var image = await WriteImageAsync(Path.Combine(_work.Path, "corrupt"), "corrupt", 2, 4 << 20, seed: 2);
        await PushAsync(image, "p2p/corrupt:1");
        var faulty = StartNode(Network.Nodes[2 + Nodes], "faulty-corrupt", fault: "corrupt");
        await PrimeAsync(faulty, "p2p/corrupt", image.Layers, puller);

        var result = await PullAsync(puller, $"{Registry}/p2p/corrupt:1");

        Assert.True(result.Succeeded, result + "\n" + puller.Process.RecentOutput);
        await AssertHoldsAsync(puller, image);
        var log = puller.Process.RecentOutput;
        Assert.Contains($"peer {faulty.Name}", log, StringComparison.Ordinal);
        Assert.Contains("does not match", log, StringComparison.OrdinalIgnoreCase);
        var status = await StatusAsync(puller);
        Assert.True(status.GetProperty("peerErrors").GetInt64() >= 1, status.ToString());
    }

    private async Task A_peer_killed_mid_transfer_costs_at_most_the_peer_timeout(AgentNode puller)
    {
        var image = await WriteImageAsync(Path.Combine(_work.Path, "held"), "held", 1, 16 << 20, seed: 3);
        await PushAsync(image, "p2p/held:1");
        var marker = Path.Combine(_work.Path, "held-marker");
        var faulty = StartNode(Network.Nodes[3 + Nodes], "faulty-held", fault: $"hold:{marker}");
        await PrimeAsync(faulty, "p2p/held", image.Layers, puller);

        var pull = PullAsync(puller, $"{Registry}/p2p/held:1");
        // The peer has sent its first buffer and holds: kill it there, in the middle of the transfer.
        await WaitAsync(() => Task.FromResult(File.Exists(marker)), "the peer to hold mid-transfer");
        Assert.True(Signals.Send(faulty.Process.Pid, Signals.Kill));
        var result = await pull;

        Assert.True(result.Succeeded, result + "\n" + puller.Process.RecentOutput);
        await AssertHoldsAsync(puller, image);
        Assert.Contains($"peer {faulty.Name}", puller.Process.RecentOutput, StringComparison.Ordinal);
    }

    private async Task A_private_registrys_blob_is_served_only_to_a_node_with_its_credentials(AgentNode holder, AgentNode without, string layer)
    {
        // holder's and without's registries.yaml differ only in credentials for the registry (which itself is open).
        await File.AppendAllTextAsync(holder.RegistriesPath, $"""
            configs:
              "{Registry}":
                auth:
                  username: puller
                  password: secret

            """);
        await WaitAsync(() => CredentialedAsync(without, holder.Name), "the holder to advertise its credentials");
        var url = $"https://{holder.Namespace.Address}:5001/v2/p2p/big/blobs/{layer}?ns={Registry}";

        var refused = await CurlAsPeerAsync(without, url);
        Assert.Equal("403", refused.Stdout.Trim());

        await File.AppendAllTextAsync(without.RegistriesPath, $"""
            configs:
              "{Registry}":
                auth:
                  username: other
                  password: secret

            """);
        await WaitAsync(() => CredentialedAsync(holder, without.Name), "the other node to advertise its credentials");
        // The holder reads the peer list every 2 s: the new advertisement takes effect at its next read.
        await WaitAsync(async () => (await CurlAsPeerAsync(without, url)).Stdout.Trim() == "200", "the holder to serve the node that now has credentials");
    }

    /// <summary>
    /// Makes <paramref name="node"/> the only holder of the layers: a HEAD to its own peer port (as itself) has it fetch
    /// them from the registry with no other node involved (a containerd pull could make the rendezvous-chosen node fetch
    /// them, and that node would then hold them too); then waits until <paramref name="viewer"/>'s peer list (read every
    /// 2 s) shows it holding them.
    /// </summary>
    private async Task PrimeAsync(AgentNode node, string repository, IReadOnlyList<string> layers, AgentNode viewer)
    {
        await WaitForPeersAsync([node], Nodes);
        foreach (var layer in layers)
        {
            var result = await CurlAsPeerAsync(node, $"https://{node.Namespace.Address}:5001/v2/{repository}/blobs/{layer}?ns={Registry}", head: true);
            Assert.True(result.Stdout.Trim() == "200", $"{node.Name} did not fetch {layer}: HTTP {result.Stdout}\n{node.Process.RecentOutput}");
            await WaitAsync(() => AdvertisedAsync(node, node.Name, layer), $"{node.Name} to advertise {layer}");
        }

        await WaitAsync(async () => (await StatusAsync(viewer)).GetProperty("peers").EnumerateArray()
            .Any(p => p.GetProperty("name").GetString() == node.Name && p.GetProperty("holds").GetInt32() >= layers.Count), $"{viewer.Name} to see {node.Name} holding the layers");
    }

    private static async Task<ToolResult> CurlAsPeerAsync(AgentNode node, string url, bool head = false)
    {
        var agent = Path.Combine(node.Data, "agent");
        return (await node.Namespace.RunAsync("curl", [.. head ? new[] { "-I" } : [], "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", Path.Combine(agent, "server-ca.crt"),
            "--cert", Path.Combine(agent, "client.crt"), "--key", Path.Combine(agent, "client.key"), url])).EnsureSuccess();
    }

    private AgentNode StartNode(NetworkNode network, string name, string? fault = null, string[]? extra = null)
    {
        var data = Directory.CreateDirectory(Path.Combine(_work.Path, name)).FullName;
        var images = Directory.CreateDirectory(Path.Combine(data, "images")).FullName;
        var registries = Path.Combine(data, "registries.yaml");
        File.WriteAllText(registries, $"""
            mirrors:
              "{Registry}":
                endpoint:
                  - "http://{Registry}"

            """);
        var environment = new Dictionary<string, string>(Environment);
        if (fault is not null)
        {
            environment["AIRLOCK_P2P_TEST_FAULT"] = fault;
        }

        var process = network.Start(RegistryProcess.AirlockCliPath(),
        [
            "agent", "--server", $"https://{Network.Nodes[0].Address}:9443", "--token-file", Path.Combine(ServerData, "server", "token"),
            "--data-dir", data, "--node-name", name, "--embedded-registry", "--registries", registries, "--images-dir", images,
            "--containerd-state", Path.Combine(data, "s"), "--containerd-version", "1.6", "--systemd-cgroup", "false", "--stream-server-port", "0",
            // Generous: on a loaded 2-core machine a peer that fetches from the registry may take seconds to answer.
            "--p2p-peer-timeout", "10s",
            .. extra ?? [],
        ], environment);
        _agents.Add(process);
        return new AgentNode(name, network, process, data, registries);
    }

    private static async Task<ToolResult> PullAsync(AgentNode node, string reference)
    {
        await WaitForSocketAsync(node);
        return await node.Namespace.RunAsync("ctr",
            ["--address", node.Socket, "-n", "k8s.io", "content", "fetch", "--hosts-dir", node.HostsDirectory, reference], TimeSpan.FromSeconds(240));
    }

    private static async Task AssertHoldsAsync(AgentNode node, GeneratedImage image)
    {
        var listed = (await node.Namespace.RunAsync("ctr", ["--address", node.Socket, "-n", "k8s.io", "content", "ls", "-q"])).EnsureSuccess().Stdout;
        foreach (var layer in image.Layers)
        {
            Assert.True(listed.Contains(layer, StringComparison.Ordinal), $"{node.Name}'s containerd lacks {layer}; it has:\n{listed}");
        }
    }

    private static async Task<JsonElement> StatusAsync(AgentNode node)
    {
        var result = await node.Namespace.RunAsync(RegistryProcess.AirlockCliPath(), ["p2p", "status", "--output", "json"]);
        using var json = JsonDocument.Parse(result.EnsureSuccess().Stdout);
        return json.RootElement.Clone();
    }

    /// <summary>What <paramref name="viewer"/> knows about <paramref name="peer"/>, from the server's node list as a member sees it.</summary>
    private async Task<JsonElement?> PeerAdvertisementAsync(string peer)
    {
        var admin = Path.Combine(ServerData, "server", "tls");
        var result = await Network.Nodes[0].RunAsync("curl", ["-sf", "--cacert", Path.Combine(admin, "server-ca.crt"), "--cert", Path.Combine(admin, "client-admin.crt"),
            "--key", Path.Combine(admin, "client-admin.key"), $"https://{Network.Nodes[0].Address}:9443/v1/nodes"]);
        if (!result.Succeeded)
        {
            return null;
        }

        using var json = JsonDocument.Parse(result.Stdout);
        foreach (var node in json.RootElement.GetProperty("nodes").EnumerateArray())
        {
            if (node.GetProperty("name").GetString() == peer && node.TryGetProperty("advertises", out var advertises))
            {
                return advertises.Clone();
            }
        }

        return null;
    }

    private async Task<bool> AdvertisedAsync(AgentNode viewer, string peer, string digest)
    {
        _ = viewer;
        return await PeerAdvertisementAsync(peer) is { } advertises && advertises.GetProperty("holds").EnumerateArray().Any(d => d.GetString() == digest);
    }

    private async Task<bool> CredentialedAsync(AgentNode viewer, string peer)
    {
        _ = viewer;
        return await PeerAdvertisementAsync(peer) is { } advertises && advertises.TryGetProperty("credentialedRegistries", out var registries)
            && registries.EnumerateArray().Any(r => r.GetString() == Registry);
    }

    private async Task WaitForPeersAsync(IReadOnlyList<AgentNode> nodes, int peers)
    {
        foreach (var node in nodes)
        {
            await WaitAsync(async () =>
            {
                var result = await node.Namespace.RunAsync(RegistryProcess.AirlockCliPath(), ["p2p", "status", "--output", "json"]);
                if (!result.Succeeded)
                {
                    return false;
                }

                using var json = JsonDocument.Parse(result.Stdout);
                return json.RootElement.GetProperty("peers").EnumerateArray().Count(p => p.GetProperty("state").GetString() == "ready") >= peers;
            }, $"{node.Name} to see {peers} ready peers");
        }
    }

    private static async Task WaitForSocketAsync(AgentNode node)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!File.Exists(node.Socket))
        {
            node.Process.EnsureRunning();
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{node.Name}'s containerd did not start\n{node.Process.RecentOutput}");
            }

            await Task.Delay(200);
        }
    }

    private async Task PushAsync(GeneratedImage image, string repositoryTag) =>
        (await RegistryNode.RunAsync("skopeo", ["copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", $"oci:{image.Layout}:{image.Tag}", $"docker://{Registry}/{repositoryTag}"],
            TimeSpan.FromSeconds(180), Tool.HermeticContainersEnvironment)).EnsureSuccess();

    private static async Task<long> TransmittedAsync(NetworkNode node)
    {
        var result = (await Tool.RunAsync("ip", ["-n", node.Namespace, "-s", "-j", "link", "show", "eth0"])).EnsureSuccess();
        using var json = JsonDocument.Parse(result.Stdout);
        return json.RootElement[0].GetProperty("stats64").GetProperty("tx").GetProperty("bytes").GetInt64();
    }

    private async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!await condition())
        {
            _server?.EnsureRunning();
            _registry?.EnsureRunning();
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited {Deadline.TotalSeconds:0}s for {what}\nserver:\n{_server?.RecentOutput}\n"
                    + string.Join("\n", _agents.Select(a => $"agent {a.Pid}:\n{a.RecentOutput}")));
            }

            await Task.Delay(250);
        }
    }

    private Task WaitAsync(Func<bool> condition, string what) => WaitAsync(() => Task.FromResult(condition()), what);

    /// <summary>
    /// An OCI layout holding one linux/amd64 image of <paramref name="layers"/> uncompressed tar layers, each one file of
    /// <paramref name="layerSize"/> pseudo-random bytes from <paramref name="seed"/>: the same digests on every run, and
    /// nothing a transfer could compress away.
    /// </summary>
    private static async Task<GeneratedImage> WriteImageAsync(string layout, string tag, int layers, int layerSize, int seed)
    {
        var blobs = Directory.CreateDirectory(Path.Combine(layout, "blobs", "sha256")).FullName;
        var layerDescriptors = new List<(string Digest, long Size)>();
        for (var i = 0; i < layers; i++)
        {
            var temp = Path.Combine(blobs, "layer.tmp");
            long size;
            string digest;
            await using (var file = File.Create(temp))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var header = TarHeader($"layer-{i}.bin", layerSize);
                Write(file, hash, header);
                var block = new byte[1 << 20];
                var state = (ulong)(seed * 1_000_003 + i + 1);
                for (var written = 0; written < layerSize; written += block.Length)
                {
                    for (var j = 0; j < block.Length; j += 8)
                    {
                        // xorshift64: fast, deterministic, incompressible enough.
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        BinaryPrimitives.WriteUInt64LittleEndian(block.AsSpan(j), state);
                    }

                    Write(file, hash, block.AsSpan(0, Math.Min(block.Length, layerSize - written)));
                }

                Write(file, hash, new byte[(512 - (layerSize % 512)) % 512 + 1024]);
                size = file.Length;
                digest = "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
            }

            File.Move(temp, Path.Combine(blobs, digest[7..]), overwrite: true);
            layerDescriptors.Add((digest, size));
        }

        var config = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["rootfs"] = new Dictionary<string, object> { ["type"] = "layers", ["diff_ids"] = layerDescriptors.Select(l => l.Digest).ToArray() },
            ["config"] = new Dictionary<string, object>(),
        }));
        var configDigest = WriteBlob(blobs, config);
        var manifest = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = new Dictionary<string, object> { ["mediaType"] = "application/vnd.oci.image.config.v1+json", ["digest"] = configDigest, ["size"] = config.Length },
            ["layers"] = layerDescriptors.Select(l => new Dictionary<string, object>
            {
                ["mediaType"] = "application/vnd.oci.image.layer.v1.tar",
                ["digest"] = l.Digest,
                ["size"] = l.Size,
            }).ToArray(),
        }));
        var manifestDigest = WriteBlob(blobs, manifest);
        await File.WriteAllTextAsync(Path.Combine(layout, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        await File.WriteAllTextAsync(Path.Combine(layout, "index.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["manifests"] = new[]
            {
                new Dictionary<string, object>
                {
                    ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                    ["digest"] = manifestDigest,
                    ["size"] = manifest.Length,
                    ["annotations"] = new Dictionary<string, string> { ["org.opencontainers.image.ref.name"] = tag },
                },
            },
        }));
        return new GeneratedImage(layout, tag, layerDescriptors.Select(l => l.Digest).ToList(), layerDescriptors.Sum(l => l.Size) + config.Length + manifest.Length, manifestDigest);

        static void Write(Stream file, IncrementalHash hash, ReadOnlySpan<byte> bytes)
        {
            file.Write(bytes);
            hash.AppendData(bytes);
        }
    }

    private static string WriteBlob(string blobs, byte[] content)
    {
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));
        File.WriteAllBytes(Path.Combine(blobs, digest[7..]), content);
        return digest;
    }

    private static byte[] TarHeader(string name, long size)
    {
        var header = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(header, 0);
        Encoding.ASCII.GetBytes("0000644\0").CopyTo(header, 100);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(header, 108);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(header, 116);
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(header, 124);
        Encoding.ASCII.GetBytes("14536017200\0").CopyTo(header, 136);
        header[156] = (byte)'0';
        Encoding.ASCII.GetBytes("ustar\0").CopyTo(header, 257);
        Encoding.ASCII.GetBytes("00").CopyTo(header, 263);
        "        "u8.CopyTo(header.AsSpan(148));
        var sum = header.Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header, 148);
        return header;
    }

    private sealed record GeneratedImage(string Layout, string Tag, IReadOnlyList<string> Layers, long Size, string Manifest);

    private sealed record AgentNode(string Name, NetworkNode Namespace, ServerProcess Process, string Data, string RegistriesPath)
    {
        public string Socket => Path.Combine(Data, "s", "containerd.sock");

        public string HostsDirectory => Path.Combine(Data, "agent", "etc", "containerd", "certs.d");
    }
}
