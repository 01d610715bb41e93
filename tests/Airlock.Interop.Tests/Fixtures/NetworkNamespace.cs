namespace Airlock.Interop.Tests.Fixtures;

/// <summary>
/// A network namespace of the test's own with only its loopback up, and host names that exist only inside it:
/// <c>/etc/netns/NAME/hosts</c>, which <c>ip netns exec</c> mounts over /etc/hosts for the commands it runs (the
/// machine's own /etc/hosts is never touched). Nothing inside can reach any address outside the namespace, so a
/// registry name that is not served there fails fast instead of leaving the machine. Disposing deletes the
/// namespace and its /etc/netns folder; processes started inside must be stopped first.
/// </summary>
public sealed class NetworkNamespace : IAsyncDisposable
{
    private NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    private string EtcDirectory => Path.Combine("/etc/netns", Name);

    /// <summary>Creates the namespace with <paramref name="hosts"/> (name → loopback address) in its hosts file.</summary>
    public static async Task<NetworkNamespace> CreateAsync(IReadOnlyDictionary<string, string> hosts, CancellationToken cancellationToken = default)
    {
        var network = new NetworkNamespace($"airlock-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(network.EtcDirectory);
        await File.WriteAllLinesAsync(Path.Combine(network.EtcDirectory, "hosts"),
            ["127.0.0.1 localhost", "::1 localhost", .. hosts.Select(entry => $"{entry.Value} {entry.Key}")], cancellationToken);
        try
        {
            (await Tool.RunAsync("ip", ["netns", "add", network.Name], cancellationToken: cancellationToken)).EnsureSuccess();
            (await Tool.RunAsync("ip", ["-n", network.Name, "link", "set", "lo", "up"], cancellationToken: cancellationToken)).EnsureSuccess();
        }
        catch
        {
            await network.DisposeAsync();
            throw;
        }

        return network;
    }

    /// <summary>The prefix that runs a command inside: <c>ip netns exec NAME</c> (which execs it, keeping the PID).</summary>
    public IReadOnlyList<string> Exec => ["ip", "netns", "exec", Name];

    public Task<ToolResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        Tool.RunAsync("ip", ["netns", "exec", Name, fileName, .. arguments], timeout, cancellationToken: cancellationToken);

    public ServerProcess StartServer(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null) =>
        ServerProcess.Start("ip", ["netns", "exec", Name, fileName, .. arguments], environment);

    public async ValueTask DisposeAsync()
    {
        await Tool.RunAsync("ip", ["netns", "delete", Name]);
        if (Directory.Exists(EtcDirectory))
        {
            Directory.Delete(EtcDirectory, recursive: true);
        }
    }
}
