using System.CommandLine;
using System.Runtime.InteropServices;
using Airlock.Cli.Hosting;
using Airlock.Node.Containerd;
using Airlock.Node.ImagesDirectory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock agent</c>: the node side — for now the air-gap images directory, imported into an existing containerd.</summary>
internal static class AgentCommand
{
    public const string DefaultContainerdSocket = "/run/containerd/containerd.sock";

    public static Command Create()
    {
        var dataDir = CommonOptions.DataDir();
        var imagesDir = new Option<string?>("--images-dir") { Description = "Directory of image archives and .txt reference lists to import (default <data-dir>/agent/images)." };
        var socket = new Option<string>("--containerd-socket")
        {
            Description = "Socket of the running containerd to import into (namespace k8s.io).",
            DefaultValueFactory = _ => DefaultContainerdSocket,
        };
        var watch = new Option<bool>("--watch")
        {
            Description = "Keep running and import files added or changed later (debounced 2 s); --watch false imports once and exits.",
            DefaultValueFactory = _ => true,
        };

        var command = new Command("agent",
            "Node agent: import every image archive (.tar, .tar.gz/.tgz, .tar.zst/.tzst, .tar.lz4, .tar.bz2/.tbz) and every .txt list of "
            + "references under the images directory into containerd (namespace k8s.io, pinned), report READY=1 to systemd once done, then "
            + "watch for new files until SIGTERM. containerd itself is not started or supervised by this version: point "
            + "--containerd-socket at one already running.")
        {
            dataDir, imagesDir, socket, watch,
        };
        var access = RegistryAccessOptions.AddTo(command);
        command.WithExamples(
            "airlock agent",
            "airlock agent --images-dir /var/lib/rancher/k3s/agent/images --containerd-socket /run/k3s/containerd/containerd.sock",
            "airlock agent --registries /etc/airlock/registries.yaml --watch false");

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var directory = parseResult.GetValue(imagesDir) ?? Path.Combine(parseResult.GetValue(dataDir)!, "agent", "images");
            using var loggerFactory = CreateLoggerFactory();
            var logger = loggerFactory.CreateLogger("Airlock.Node.ImagesDirectory");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal => { signal.Cancel = true; stop.Cancel(); });
            using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal => { signal.Cancel = true; stop.Cancel(); });
            var socketPath = parseResult.GetValue(socket)!;
            if (!File.Exists(socketPath))
            {
                throw new FileNotFoundException($"containerd socket {socketPath} does not exist: start containerd first (this version does not run it) or pass --containerd-socket");
            }

            await using var client = ContainerdClient.Connect(socketPath);
            var agent = new ImagesDirectoryAgent(client, new ImagesDirectoryOptions
            {
                Directory = directory,
                Registry = access.Connect(parseResult),
                Import = new ContainerdImportOptions { Logger = loggerFactory.CreateLogger("Airlock.Node.Containerd") },
                Logger = logger,
            }, SystemdNotifier.FromEnvironment(), TimeProvider.System)
            {
                Watch = parseResult.GetValue(watch),
            };
            try
            {
                await agent.RunAsync(stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // SIGTERM or Ctrl+C during the start-up pass: a clean stop.
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
