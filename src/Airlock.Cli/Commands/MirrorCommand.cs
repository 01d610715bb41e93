using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using Airlock.Cli.Hosting;
using Airlock.Node;
using Airlock.Node.Mirror;
using Airlock.Registry;
using Microsoft.Extensions.Logging;

namespace Airlock.Cli.Commands;

/// <summary>
/// <c>airlock mirror</c>: the node-local mirror containerd is pointed at (by <c>registries render --mirror-address</c>)
/// for registries whose registries.yaml needs rewrites or no default endpoint, which stock containerd cannot do.
/// </summary>
internal static class MirrorCommand
{
    /// <summary>Where the node-local mirror listens unless told otherwise, for every verb that takes <c>--mirror-address</c>.</summary>
    public static readonly string DefaultAddress = $"127.0.0.1:{MirrorOptions.DefaultPort}";

    /// <summary>
    /// <c>--mirror-address</c>, shared by <c>mirror</c> (where it listens), <c>agent</c> (where its mirror listens) and
    /// <c>registries render</c> (where hosts.toml points containerd), with one default, so one config.yaml key keeps
    /// them in agreement.
    /// </summary>
    public static Option<string> AddressOption(string description) => new("--mirror-address")
    {
        Description = description,
        DefaultValueFactory = _ => DefaultAddress,
    };

    /// <summary><c>--mirror-address</c> of a verb where <c>off</c> means "no node-local mirror: K3s's files unchanged" (null).</summary>
    public static IPEndPoint? ParseAddressOrOff(string value) => value is "off" or "none" or "" ? null : ParseAddress(value);

    /// <summary>Parses <c>host:port</c> as <c>--mirror-address</c> takes it, or throws a usage error naming the value.</summary>
    public static IPEndPoint ParseAddress(string value)
    {
        if (!RegistryServer.TryParseListen(value, out var endPoint))
        {
            throw new UsageException($"--mirror-address \"{value}\" is not an address like 127.0.0.1:{MirrorOptions.DefaultPort} or [::1]:{MirrorOptions.DefaultPort}");
        }

        return endPoint;
    }

    public static Command Create()
    {
        var registries = new PathOption("--registries", PathKind.File,
            $"registries.yaml in K3s format (default {RegistriesCommand.DefaultRegistriesPath}, which may be absent); re-read on SIGHUP.",
            RegistriesCommand.DefaultRegistriesPath);
        var address = AddressOption(
            $"Address to listen on (default {DefaultAddress}; loopback: the mirror holds the node's registry credentials). 'registries render' points containerd at the same default.");
        var disableDefault = new Option<bool>("--disable-default-registry-endpoint")
        {
            Description = "Never fall back to a mirrored registry's own endpoint (K3s flag of the same name).",
        };
        var connectTimeout = new DurationOption(
            "--connect-timeout",
            "Abandon an endpoint that does not accept a connection (TCP and TLS) within this time and try the next (e.g. 500ms, 5s, 1m).",
            "5s")
        {
            Positive = true,
        };
        var responseTimeout = new DurationOption(
            "--response-timeout",
            "Abandon an endpoint that accepted the connection but sends no answer within this time and try the next; a blob body stalled this long is cut.",
            "30s")
        {
            Positive = true,
        };

        var command = new Command(
            "mirror",
            "Serve pulls for containerd on this node, applying registries.yaml itself: endpoint order, fallback to the next endpoint, "
            + "rewrites, the default endpoint last unless disabled, per-endpoint TLS and credentials. For stock containerd, which has no rewrite "
            + "and no way to disable the default endpoint; point containerd at it with 'registries render --mirror-address'.")
        {
            registries, address, disableDefault, connectTimeout, responseTimeout,
        };
        command.WithExamples(
            "airlock mirror",
            "airlock mirror --registries /etc/airlock/registries.yaml --mirror-address 127.0.0.1:5100 --connect-timeout 2s",
            "airlock registries render --mirror-address 127.0.0.1:5100 --disable-default-registry-endpoint   # point containerd at it",
            "kill -HUP <pid>   # re-read registries.yaml without dropping transfers in flight");
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var error = parseResult.InvocationConfiguration.Error;
            var options = new MirrorOptions
            {
                Listen = ParseAddress(parseResult.GetValue(address)!),
                DisableDefaultEndpoint = parseResult.GetValue(disableDefault),
                ConnectTimeout = connectTimeout.GetDuration(parseResult),
                ResponseTimeout = responseTimeout.GetDuration(parseResult),
            };

            var path = parseResult.GetValue(registries)!;
            // Given, or there now: a registries.yaml missing at a reload is refused (the previous one kept), not served as "no mirrors".
            var required = parseResult.GetResult(registries) is { Implicit: false } || File.Exists(path);
            var file = await ReadAsync(path, required, error, cancellationToken).ConfigureAwait(false);
            if (file is null)
            {
                await error.WriteLineAsync($"airlock: {path} cannot be used; the mirror was not started").ConfigureAwait(false);
                return AirlockCli.ExitError;
            }

            using var loggerFactory = CliLogging.CreateFactory();
            options = options with { LoggerFactory = loggerFactory };
            var logger = loggerFactory.CreateLogger("Airlock.Node.Mirror");
            using var stop = StopSignals.Register(cancellationToken);
            await using var mirror = await NodeMirror.StartAsync(file, options, cancellationToken).ConfigureAwait(false);

            var reloads = System.Threading.Channels.Channel.CreateBounded<bool>(1);
            using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, signal => { signal.Cancel = true; reloads.Writer.TryWrite(true); });
            try
            {
                while (await reloads.Reader.WaitToReadAsync(stop.Token).ConfigureAwait(false))
                {
                    reloads.Reader.TryRead(out _);
                    await ReloadAsync(mirror, path, required, error, logger, stop.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.Token.IsCancellationRequested)
            {
                // SIGTERM or Ctrl+C: stop gracefully below.
            }

            await mirror.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static async Task ReloadAsync(NodeMirror mirror, string path, bool required, TextWriter error, ILogger logger, CancellationToken cancellationToken)
    {
        var file = await ReadAsync(path, required, error, cancellationToken).ConfigureAwait(false);
        if (file is null)
        {
            logger.LogError("{Path} cannot be used; still serving the previous registries.yaml", path);
            return;
        }

        try
        {
            mirror.Reload(file);
        }
        catch (InvalidOperationException ex)
        {
            logger.LogError("{Path}: {Problem}; still serving the previous registries.yaml", path, ex.Message);
        }
    }

    // Problems are printed; a file with fatal ones is not served (an unreadable file must not mean "no mirrors").
    private static async Task<RegistriesFile?> ReadAsync(string path, bool required, TextWriter error, CancellationToken cancellationToken)
    {
        var (file, readProblems) = await RegistriesFileReader.ReadAsync(path, missingIsEmpty: !required, cancellationToken).ConfigureAwait(false);
        var problems = RegistriesValidator.Validate(file, readProblems);
        foreach (var problem in problems)
        {
            await error.WriteLineAsync($"airlock: {problem}").ConfigureAwait(false);
        }

        return problems.Any(p => p.Severity == ProblemSeverity.Fatal) ? null : file;
    }
}
