using System.CommandLine;
using System.Reflection;
using Airlock.Cli.Hosting;
using Airlock.Cluster.Join;
using Airlock.Cluster.Peers;
using Airlock.Node.Agent;
using Airlock.Node.Containerd;
using Airlock.Node.ContainerdSupervision;
using Airlock.Node.ImagesDirectory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Airlock.Cli.Commands;

/// <summary>
/// <c>airlock agent</c>: the node side — containerd rendered from registries.yaml, started and supervised (or an
/// existing one given by <c>--containerd-socket</c>), and the air-gap images directory imported into it.
/// </summary>
internal static class AgentCommand
{
    /// <summary>Where the supervised containerd keeps its state and socket (K3s: /run/k3s/containerd).</summary>
    public const string DefaultContainerdState = "/run/airlock/containerd";

    public const string SocketName = "containerd.sock";

    public static Command Create()
    {
        var dataDir = CommonOptions.DataDir();
        var imagesDir = new PathOption("--images-dir", PathKind.Directory,
            "Directory of image archives and .txt reference lists to import (default <data-dir>/agent/images, which may be absent).");
        var socket = new PathOption("--containerd-socket", PathKind.Socket,
            "Use the containerd already serving this socket (e.g. /run/containerd/containerd.sock) instead of starting and supervising one.")
        {
            Remedy = "start that containerd first, or leave out --containerd-socket to have the agent run one",
        };
        var watch = new Option<bool>("--watch")
        {
            Description = "Keep importing files added or changed later (debounced 2 s). --watch false with --containerd-socket imports once and exits; "
                + "with a supervised containerd the agent keeps running it.",
            DefaultValueFactory = _ => true,
        };
        var keepRemoved = new Option<bool>("--keep-removed-images")
        {
            Description = "Keep images whose archive (or .txt list) was removed from the images directory or replaced by one without them. "
                + "By default they are removed from containerd (unpinned, so its garbage collection frees them) unless a container uses them.",
        };
        var root = new Option<string?>("--containerd-root") { Description = "Root directory of the supervised containerd (default <data-dir>/agent/containerd)." };
        var state = new Option<string>("--containerd-state")
        {
            Description = $"State directory of the supervised containerd; its socket is <state>/{SocketName}.",
            DefaultValueFactory = _ => DefaultContainerdState,
        };
        var stopTimeout = new DurationOption("--containerd-stop-timeout", "Time between SIGTERM and SIGKILL when stopping the supervised containerd.", "10s")
        {
            Positive = true,
        };
        var mirrorAddress = MirrorCommand.AddressOption(
            $"Where the node-local mirror listens when registries.yaml needs it (a rewrite, or --disable-default-registry-endpoint, which stock "
            + $"containerd cannot do itself); those registries' hosts.toml point containerd at it (default {MirrorCommand.DefaultAddress}, as "
            + "'registries render'). 'off' renders K3s's files unchanged.");

        var server = new Option<string?>("--server", "-s") { Description = "Join the cluster of this airlock server (https://HOST:PORT) and keep its membership: heartbeats, certificate renewal." };
        var token = new Option<string?>("--token", "-t") { Description = "Join token (K10<CA hash>::…) from the server's <data-dir>/server/token, --agent-token or `airlock token create`." };
        var tokenFile = new PathOption("--token-file", PathKind.File, "File holding the join token (instead of --token).");
        var withNodeId = new Option<bool>("--with-node-id") { Description = "With --server: add a random suffix (kept) to the node name, so machines sharing a host name join as different nodes." };
        var nodeLabel = new Option<string[]>("--node-label") { Description = "With --server: a label key=value the node registers at join (repeatable); kubernetes.io and k8s.io labels are refused (KEP-279).", AllowMultipleArgumentsPerToken = false };
        var nodeTaint = new Option<string[]>("--node-taint") { Description = "With --server: a taint key[=value]:Effect the node registers at join (repeatable).", AllowMultipleArgumentsPerToken = false };
        var embeddedRegistry = new Option<bool>("--embedded-registry")
        {
            Description = "With --server: share blobs of the registries under mirrors in registries.yaml (\"*\" for all; never localhost) with the "
                + "other nodes, peer to peer: containerd asks the node mirror, which asks peers (mutual TLS, cluster certificates), then the registry.",
        };
        var p2pListen = new Option<string?>("--p2p-listen") { Description = $"With --embedded-registry: where peers reach this node (default <node-ip>:{PeerMirrorOptions.DefaultPort})." };
        var p2pPeerTimeout = new DurationOption("--p2p-peer-timeout", "With --embedded-registry: the most one peer may take to connect, answer, or stall mid-blob before the next peer, then the registry, is asked.", "5s")
        {
            Positive = true,
        };
        var p2pShareTags = new Option<bool>("--p2p-share-tags")
        {
            Description = "With --embedded-registry: resolve tags by asking peers first (what the registry told them last, which may be stale, "
                + "e.g. an old :latest), then the registry. Off by default: tags come from the registry; blobs are shared by digest either way.",
        };
        var nodeIp = new Option<string[]>("--node-ip") { Description = "With --server: the address(es) other nodes reach this one at (default: the default route's interface address).", AllowMultipleArgumentsPerToken = false };

        var command = new Command("agent",
            "Node agent: render config.toml and certs.d/*/hosts.toml from registries.yaml and run containerd with them (restarted with backoff "
            + "when it exits; registries.yaml watched: hosts.toml changes apply at the next pull, a config.toml change restarts containerd once "
            + "no import is running), or use an existing containerd (--containerd-socket). Then import every image archive (.tar, .tar.gz/.tgz, "
            + ".tar.zst/.tzst, .tar.lz4, .tar.bz2/.tbz) and every .txt list of references under the images directory (namespace k8s.io, "
            + "pinned), report READY=1 to systemd once done (with a STATUS naming files that failed; --watch false exits 1 then), and watch for new, "
            + "changed and removed files until SIGTERM, which also stops containerd (its containers keep running). Images whose file was removed are "
            + "removed too, unless a container uses them. A containerd left running by an agent that was killed is recognised (<state>/containerd.pid "
            + "and its command line) and replaced at the next start; one the agent did not start is refused.")
        {
            dataDir, imagesDir, socket, watch, keepRemoved, root, state, stopTimeout, mirrorAddress, server, token, tokenFile, withNodeId, nodeLabel, nodeTaint,
            nodeIp, embeddedRegistry, p2pListen, p2pPeerTimeout, p2pShareTags,
        };
        var config = ContainerdConfigFlags.AddTo(command);
        config.AddProxyTo(command);
        var access = RegistryAccessOptions.AddTo(command, RegistriesCommand.DefaultRegistriesPath);
        command.WithExamples(
            "airlock agent",
            "airlock agent --registries /etc/airlock/registries.yaml --sandbox-image registry.example.com/pause:3.10",
            "airlock agent --images-dir /var/lib/rancher/k3s/agent/images --containerd-socket /run/k3s/containerd/containerd.sock",
            "airlock agent --containerd-socket /run/containerd/containerd.sock --watch false",
            "airlock agent --disable-default-registry-endpoint --mirror-address 127.0.0.1:5100   # no request ever leaves for a registry itself",
            "airlock agent --server https://server.airgap.local:9443 --token-file /etc/airlock/token --node-label example.com/rack=3",
            "airlock agent --server https://server.airgap.local:9443 --token-file /etc/airlock/token --embedded-registry   # nodes share layers");

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var data = parseResult.GetValue(dataDir)!;
            var directory = parseResult.GetValue(imagesDir) ?? Path.Combine(data, "agent", "images");
            var stopAfter = stopTimeout.GetDuration(parseResult);

            var mirrorListen = MirrorCommand.ParseAddressOrOff(parseResult.GetValue(mirrorAddress)!);

            var membership = MembershipOptions(parseResult, data, config);
            var sharing = parseResult.GetValue(embeddedRegistry);
            if (sharing && (membership is null || mirrorListen is null || parseResult.GetValue(socket) is not null))
            {
                throw new UsageException("--embedded-registry needs --server (peers are the cluster's members), the node mirror (--mirror-address not off) "
                    + "and the containerd the agent runs (not --containerd-socket): containerd is pointed at the node mirror through the hosts.toml the agent renders");
            }

            if (!sharing && parseResult.GetValue(p2pListen) is not null)
            {
                throw new UsageException("--p2p-listen is for --embedded-registry");
            }

            if (!sharing && parseResult.GetValue(p2pShareTags))
            {
                throw new UsageException("--p2p-share-tags is for --embedded-registry (tags are resolved by peers only when nodes share content)");
            }

            var p2pAddress = parseResult.GetValue(p2pListen) is { } p2pValue ? ParseP2pListen(p2pValue) : null;
            PeerMirror? peers = null;
            if (membership is not null && sharing)
            {
                membership = membership with { Advertise = () => peers?.Advertise() };
            }

            using var loggerFactory = CreateLoggerFactory();
            using var stop = StopSignals.Register(cancellationToken);
            var existing = parseResult.GetValue(socket);

            SupervisedContainerd? supervision = null;
            if (existing is null)
            {
                var stateDir = Path.GetFullPath(parseResult.GetValue(state)!);
                var socketPath = Path.Combine(stateDir, SocketName);
                var rootDir = Path.GetFullPath(parseResult.GetValue(root) ?? Path.Combine(data, "agent", "containerd"));
                var options = await config.ConfigAsync(parseResult, data, rootDir, stateDir, socketPath, stop.Token).ConfigureAwait(false);
                var registriesPath = access.RegistriesPath(parseResult)!;
                supervision = new SupervisedContainerd
                {
                    Render = new ContainerdRenderSettings
                    {
                        RegistriesPath = registriesPath,
                        RegistriesRequired = access.RegistriesGiven(parseResult) || File.Exists(registriesPath),
                        Config = options,
                        DisableDefaultEndpoint = parseResult.GetValue(config.DisableDefaultEndpoint),
                        ProxyEnvironment = config.ProxyEnvironment(parseResult),
                    },
                    Supervisor = new ContainerdSupervisorOptions
                    {
                        ConfigPath = Path.Combine(options.ContainerdDir, Airlock.Node.ContainerdRenderer.ConfigTomlName),
                        SocketPath = socketPath,
                        PidFile = Path.Combine(stateDir, ContainerdSupervisorOptions.PidFileName),
                        StopTimeout = stopAfter,
                        Logger = loggerFactory.CreateLogger("Airlock.Node.ContainerdSupervision"),
                    },
                    Mirror = mirrorListen is null ? null : new Airlock.Node.Mirror.MirrorOptions { Listen = mirrorListen, LoggerFactory = loggerFactory },
                };
            }

            NodeAgent CreateAgent() => new(new NodeAgentOptions
            {
                Images = new ImagesDirectoryOptions
                {
                    Directory = directory,
                    MustExist = parseResult.GetValue(imagesDir) is not null,
                    KeepRemovedImages = parseResult.GetValue(keepRemoved),
                    Registry = access.Connect(parseResult),
                    Import = new ContainerdImportOptions { Logger = loggerFactory.CreateLogger("Airlock.Node.Containerd") },
                    Logger = loggerFactory.CreateLogger("Airlock.Node.ImagesDirectory"),
                },
                Supervision = supervision is { Mirror: { } mirror } && peers is not null ? supervision with { Mirror = mirror with { BlobSource = peers } } : supervision,
                ContainerdSocket = existing,
                Watch = parseResult.GetValue(watch),
                Logger = loggerFactory.CreateLogger("Airlock.Node.Agent"),
            }, SystemdNotifier.FromEnvironment(), TimeProvider.System);
            ClusterMember? member = null;
            using var stopHeartbeats = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            var heartbeats = Task.CompletedTask;
            try
            {
                if (membership is not null)
                {
                    // Joined before anything else starts, as K3s's agent: a join that cannot succeed stops the agent here.
                    member = await ClusterMember.StartAsync(membership with { Logger = loggerFactory.CreateLogger("Airlock.Cluster.Join") }, stop.Token).ConfigureAwait(false);
                    if (sharing)
                    {
                        peers = await PeerMirror.StartAsync(member, new PeerMirrorOptions
                        {
                            Listen = p2pAddress ?? new System.Net.IPEndPoint(member.Addresses[0], PeerMirrorOptions.DefaultPort),
                            StoreDirectory = Path.Combine(data, "agent", "p2p"),
                            PeerTimeout = p2pPeerTimeout.GetDuration(parseResult),
                            ShareTags = parseResult.GetValue(p2pShareTags),
                            ContainerdSocket = existing ?? supervision?.Supervisor.SocketPath,
                            TestFault = Environment.GetEnvironmentVariable("AIRLOCK_P2P_TEST_FAULT") is { Length: > 0 } fault ? fault : null,
                            LoggerFactory = loggerFactory,
                        }, stop.Token).ConfigureAwait(false);
                    }

                    heartbeats = member.RunAsync(stopHeartbeats.Token);
                }

                await CreateAgent().RunAsync(stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.Token.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // SIGTERM or Ctrl+C during start-up: a clean stop.
            }
            finally
            {
                await stopHeartbeats.CancelAsync().ConfigureAwait(false);
                try
                {
                    await heartbeats.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }

                if (peers is not null)
                {
                    await peers.DisposeAsync().ConfigureAwait(false);
                }

                member?.Dispose();
            }

            return AirlockCli.ExitOk;
        });
        return command;

        ClusterMemberOptions? MembershipOptions(ParseResult parseResult, string data, ContainerdConfigFlags config)
        {
            var problems = new List<string>();
            var url = parseResult.GetValue(server);
            var joinToken = ServerCommand.TokenValue(parseResult, token, tokenFile, problems);
            var labels = parseResult.GetValue(nodeLabel) ?? [];
            var taints = parseResult.GetValue(nodeTaint) ?? [];
            var ips = parseResult.GetValue(nodeIp) ?? [];
            if (url is null)
            {
                if (joinToken is not null || labels.Length + taints.Length + ips.Length > 0 || parseResult.GetValue(withNodeId))
                {
                    problems.Add("--token, --node-label, --node-taint, --node-ip and --with-node-id are for joining a cluster: give --server too");
                }

                return problems.Count > 0 ? throw new UsageException(string.Join(Environment.NewLine + "airlock: ", problems)) : null;
            }

            if (joinToken is null && problems.Count == 0)
            {
                problems.Add("--server needs the join token: --token or --token-file (the server's <data-dir>/server/token)");
            }

            if (!Uri.TryCreate(url, UriKind.Absolute, out var serverUri))
            {
                problems.Add($"--server \"{url}\" is not a URL like https://server:9443");
            }

            var addresses = new List<System.Net.IPAddress>();
            foreach (var ip in ips.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
            {
                if (System.Net.IPAddress.TryParse(ip, out var address))
                {
                    addresses.Add(address);
                }
                else
                {
                    problems.Add($"--node-ip \"{ip}\" is not an IP address");
                }
            }

            var names = config.GivenNodeNames(parseResult);
            if (names.Count > 1)
            {
                problems.Add("--server joins under one --node-name; several were given");
            }

            if (problems.Count > 0)
            {
                throw new UsageException(string.Join(Environment.NewLine + "airlock: ", problems));
            }

            var options = new ClusterMemberOptions
            {
                Server = serverUri!,
                Token = joinToken!,
                DataDirectory = data,
                NodeName = names.Count == 1 ? names[0] : null,
                WithNodeId = parseResult.GetValue(withNodeId),
                Labels = labels,
                Taints = taints,
                Addresses = addresses,
                Version = typeof(AgentCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion,
            };
            var invalid = options.Validate();
            return invalid.Count > 0 ? throw new UsageException(string.Join(Environment.NewLine + "airlock: ", invalid)) : options;
        }
    }

    private static System.Net.IPEndPoint ParseP2pListen(string value)
    {
        if (!Airlock.Registry.RegistryServer.TryParseListen(value, out var endPoint))
        {
            throw new UsageException($"--p2p-listen \"{value}\" is not an address like 10.0.0.5:{PeerMirrorOptions.DefaultPort} or [fd00::5]:{PeerMirrorOptions.DefaultPort}");
        }

        return endPoint;
    }

    private static ILoggerFactory CreateLoggerFactory() => LoggerFactory.Create(logging =>
    {
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddSimpleConsole(console =>
        {
            console.SingleLine = true;
            console.TimestampFormat = "yyyy-MM-ddTHH:mm:ssZ ";
            console.UseUtcTimestamp = true;
        });
        logging.Services.Configure<ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
    });
}
