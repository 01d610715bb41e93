using System.CommandLine;
using System.Runtime.InteropServices;
using Airlock.Cli.Hosting;
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
            dataDir, imagesDir, socket, watch, keepRemoved, root, state, stopTimeout, mirrorAddress,
        };
        var config = ContainerdConfigFlags.AddTo(command);
        config.AddProxyTo(command);
        var access = RegistryAccessOptions.AddTo(command, RegistriesCommand.DefaultRegistriesPath);
        command.WithExamples(
            "airlock agent",
            "airlock agent --registries /etc/airlock/registries.yaml --sandbox-image registry.example.com/pause:3.10",
            "airlock agent --images-dir /var/lib/rancher/k3s/agent/images --containerd-socket /run/k3s/containerd/containerd.sock",
            "airlock agent --containerd-socket /run/containerd/containerd.sock --watch false",
            "airlock agent --disable-default-registry-endpoint --mirror-address 127.0.0.1:5100   # no request ever leaves for a registry itself");

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var data = parseResult.GetValue(dataDir)!;
            var directory = parseResult.GetValue(imagesDir) ?? Path.Combine(data, "agent", "images");
            var stopAfter = stopTimeout.GetDuration(parseResult);

            var mirrorListen = MirrorCommand.ParseAddressOrOff(parseResult.GetValue(mirrorAddress)!);

            using var loggerFactory = CreateLoggerFactory();
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal => { signal.Cancel = true; stop.Cancel(); });
            using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal => { signal.Cancel = true; stop.Cancel(); });
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

            var agent = new NodeAgent(new NodeAgentOptions
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
                Supervision = supervision,
                ContainerdSocket = existing,
                Watch = parseResult.GetValue(watch),
                Logger = loggerFactory.CreateLogger("Airlock.Node.Agent"),
            }, SystemdNotifier.FromEnvironment(), TimeProvider.System);
            try
            {
                await agent.RunAsync(stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // SIGTERM or Ctrl+C during start-up: a clean stop.
            }

            return AirlockCli.ExitOk;
        });
        return command;
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
