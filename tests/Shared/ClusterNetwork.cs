using System.Globalization;
using System.Net;

namespace Airlock.Testing;

/// <summary>One machine of a <see cref="ClusterNetwork"/>: a network namespace with one address on the private network.</summary>
public sealed record NetworkNode(string Namespace, IPAddress Address)
{
    /// <summary>
    /// The prefix that runs a command in this node's network namespace only: <c>nsenter --net=/run/netns/NAME</c>, which execs
    /// the command (same PID, so it is stopped by its own PID) and, unlike <c>ip netns exec</c>, leaves /sys and the cgroup
    /// mount (which runc needs) as they are.
    /// </summary>
    public IReadOnlyList<string> Enter => ["nsenter", $"--net=/run/netns/{Namespace}"];

    public ServerProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null) =>
        ServerProcess.Start(Enter[0], [.. Enter.Skip(1), fileName, .. arguments], environment);

    public Task<ToolResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null) =>
        Tool.RunAsync(Enter[0], [.. Enter.Skip(1), fileName, .. arguments], timeout, environment);
}

/// <summary>
/// A private network of machines on this one: a namespace holding a Linux bridge, and one namespace per node joined to it by
/// a veth pair, node <c>i</c> at <c>10.213.0.(i+1)/24</c>. Everything is created inside namespaces with random names (other
/// tests run at the same time), nothing in the machine's own namespace: the addresses exist only here, and no traffic can
/// leave. Disposing deletes the namespaces; processes started in them must be stopped first.
/// </summary>
public sealed class ClusterNetwork : IAsyncDisposable
{
    public const string Prefix = "10.213.0.";

    private readonly List<string> _namespaces = [];

    private ClusterNetwork(string bridge) => Bridge = bridge;

    /// <summary>The namespace that holds the bridge.</summary>
    public string Bridge { get; }

    public IReadOnlyList<NetworkNode> Nodes { get; private set; } = [];

    public static async Task<ClusterNetwork> CreateAsync(int nodes, CancellationToken cancellationToken = default)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var network = new ClusterNetwork($"airlock-{id}-br");
        try
        {
            await network.AddNamespaceAsync(network.Bridge, cancellationToken);
            await IpAsync(["-n", network.Bridge, "link", "add", "br0", "type", "bridge"], cancellationToken);
            await IpAsync(["-n", network.Bridge, "link", "set", "br0", "up"], cancellationToken);
            var created = new List<NetworkNode>();
            for (var i = 0; i < nodes; i++)
            {
                var index = i.ToString(CultureInfo.InvariantCulture);
                var name = $"airlock-{id}-n{index}";
                var address = IPAddress.Parse(Prefix + (i + 1).ToString(CultureInfo.InvariantCulture));
                await network.AddNamespaceAsync(name, cancellationToken);
                await IpAsync(["-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", $"p{index}", "netns", network.Bridge], cancellationToken);
                await IpAsync(["-n", name, "addr", "add", $"{address}/24", "dev", "eth0"], cancellationToken);
                await IpAsync(["-n", name, "link", "set", "eth0", "up"], cancellationToken);
                await IpAsync(["-n", network.Bridge, "link", "set", $"p{index}", "master", "br0"], cancellationToken);
                await IpAsync(["-n", network.Bridge, "link", "set", $"p{index}", "up"], cancellationToken);
                created.Add(new NetworkNode(name, address));
            }

            network.Nodes = created;
            return network;
        }
        catch
        {
            await network.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var name in Enumerable.Reverse(_namespaces))
        {
            await Tool.RunAsync("ip", ["netns", "delete", name]);
        }
    }

    private async Task AddNamespaceAsync(string name, CancellationToken cancellationToken)
    {
        await IpAsync(["netns", "add", name], cancellationToken);
        _namespaces.Add(name);
        await IpAsync(["-n", name, "link", "set", "lo", "up"], cancellationToken);
    }

    private static async Task IpAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        (await Tool.RunAsync("ip", arguments, cancellationToken: cancellationToken)).EnsureSuccess();
}
