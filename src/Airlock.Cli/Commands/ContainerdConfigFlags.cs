using System.CommandLine;
using Airlock.Node;

namespace Airlock.Cli.Commands;

/// <summary>
/// The flags that shape the rendered config.toml and containerd's proxy environment, shared by
/// <c>registries render</c> and <c>agent</c> so both render the same files from the same settings.
/// </summary>
internal sealed class ContainerdConfigFlags
{
    private readonly Option<bool> _disableDefault = new("--disable-default-registry-endpoint")
    {
        Description = "Do not fall back to a mirrored registry's own endpoint (K3s flag of the same name).",
    };

    private readonly Option<string> _containerdVersion = new("--containerd-version")
    {
        Description = "containerd the config is for: 1.6 or 1.7 (config version 2), 2 (version 3), or auto (ask the installed containerd).",
        DefaultValueFactory = _ => "auto",
    };

    private readonly Option<string?> _sandboxImage = new("--sandbox-image") { Description = "Pause image for pod sandboxes (default: containerd's own)." };

    private readonly Option<string> _systemdCgroup = new("--systemd-cgroup")
    {
        Description = "runc cgroup driver: auto (systemd when it is PID 1 on cgroup v2), true or false.",
        DefaultValueFactory = _ => "auto",
    };

    private readonly Option<int> _streamServerPort = new("--stream-server-port")
    {
        Description = "Port of the CRI streaming server on 127.0.0.1 (K3s uses 10010; 0 picks a free one, for a second containerd on the host).",
        DefaultValueFactory = _ => 10010,
    };

    private readonly Option<string[]> _clusterCidr = new("--cluster-cidr")
    {
        Description = "Pod networks, added to containerd's NO_PROXY when a proxy is set (repeat or comma-separate).",
        DefaultValueFactory = _ => ["10.42.0.0/16"],
    };

    private readonly Option<string[]> _serviceCidr = new("--service-cidr")
    {
        Description = "Service networks, added to containerd's NO_PROXY when a proxy is set.",
        DefaultValueFactory = _ => ["10.43.0.0/16"],
    };

    private readonly Option<string> _clusterDomain = new("--cluster-domain") { Description = "Cluster DNS domain, added to NO_PROXY.", DefaultValueFactory = _ => "cluster.local" };

    private readonly Option<string[]> _nodeName = new("--node-name")
    {
        Description = "This node's name: added to containerd's NO_PROXY and, with --server, the one name it joins the cluster under (default: this host's name).",
        DefaultValueFactory = _ => [Environment.MachineName],
    };

    private ContainerdConfigFlags()
    {
        _containerdVersion.AcceptOnlyFromAmong("auto", "1.6", "1.7", "2");
        _systemdCgroup.AcceptOnlyFromAmong("auto", "true", "false");
    }

    public Option<bool> DisableDefaultEndpoint => _disableDefault;

    /// <summary>The <c>--node-name</c> values given (not the default), comma-separated ones split.</summary>
    public IReadOnlyList<string> GivenNodeNames(ParseResult parseResult) =>
        parseResult.GetResult(_nodeName) is { Implicit: false } ? Split(parseResult.GetValue(_nodeName)) : [];

    /// <summary>Adds the registry and config.toml flags (proxy flags separately, see <see cref="AddProxyTo"/>).</summary>
    public static ContainerdConfigFlags AddTo(Command command)
    {
        var flags = new ContainerdConfigFlags();
        command.Options.Add(flags._disableDefault);
        command.Options.Add(flags._containerdVersion);
        command.Options.Add(flags._sandboxImage);
        command.Options.Add(flags._systemdCgroup);
        command.Options.Add(flags._streamServerPort);
        return flags;
    }

    public void AddProxyTo(Command command)
    {
        command.Options.Add(_clusterCidr);
        command.Options.Add(_serviceCidr);
        command.Options.Add(_clusterDomain);
        command.Options.Add(_nodeName);
    }

    /// <summary>config.toml settings from the flags, probing the host where they say auto; drop-ins from <c>config.toml.d/*.toml</c>.</summary>
    public async Task<ContainerdConfigOptions> ConfigAsync(ParseResult parseResult, string dataDir, string? root, string? state, string? address, CancellationToken cancellationToken)
    {
        var pathVariable = Environment.GetEnvironmentVariable("PATH");
        var version = parseResult.GetValue(_containerdVersion)!;
        var schema = version == "auto"
            ? await ContainerdHostProbe.DetectSchemaAsync(pathVariable, cancellationToken).ConfigureAwait(false)
            : ContainerdHostProbe.SchemaForVersion(version);
        var cgroup = parseResult.GetValue(_systemdCgroup)!;
        var port = parseResult.GetValue(_streamServerPort);
        if (port is < 0 or > 65535)
        {
            throw new Hosting.UsageException($"--stream-server-port {port} is not a TCP port (0-65535)");
        }

        var options = new ContainerdConfigOptions
        {
            DataDir = Path.GetFullPath(dataDir),
            Schema = schema,
            SandboxImage = parseResult.GetValue(_sandboxImage),
            StreamServerPort = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            SystemdCgroup = cgroup == "auto" ? ContainerdHostProbe.DetectSystemdCgroup() : cgroup == "true",
            Runtimes = ContainerdHostProbe.DetectNvidiaRuntimes(pathVariable),
            Root = root,
            State = state,
            GrpcAddress = address,
        };
        return options with { Imports = [Path.Combine(options.ContainerdDir, "config.toml.d", "*.toml")] };
    }

    /// <summary>containerd's proxy variables (empty without a proxy), NO_PROXY extended with the cluster's networks.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ProxyEnvironment(ParseResult parseResult)
    {
        return ContainerdProxyEnvironment.Build(Environment.GetEnvironmentVariables(), new ClusterNetworks
        {
            ClusterCidrs = Split(parseResult.GetValue(_clusterCidr)),
            ServiceCidrs = Split(parseResult.GetValue(_serviceCidr)),
            ClusterDomain = parseResult.GetValue(_clusterDomain)!,
            NodeNames = Split(parseResult.GetValue(_nodeName)),
        });
    }

    private static string[] Split(string[]? values) => (values ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
}
