using System.CommandLine;
using Airlock.Cli.Hosting;
using Airlock.Cluster;
using Airlock.Cluster.Supervisor;
using Airlock.Registry;
using Microsoft.Extensions.Logging;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock server</c>: the cluster's root of trust and membership (K3s's server, without the control plane).</summary>
internal static class ServerCommand
{
    /// <summary>K3s's 120 days, in the Go duration syntax every duration flag takes.</summary>
    public const string DefaultRenewWithin = "2880h";

    public static Command Create()
    {
        var listen = new Option<string>("--listen") { Description = $"Address and port of the supervisor API (HTTPS).", DefaultValueFactory = _ => $"0.0.0.0:{SupervisorPaths.DefaultPort}" };
        var dataDir = CommonOptions.DataDir();
        var tlsSan = new Option<string[]>("--tls-san") { Description = "Extra host name or IP for the server's certificates (repeatable); the host's names and addresses are always in.", AllowMultipleArgumentsPerToken = false };
        var token = new Option<string?>("--token", "-t") { Description = "Server join token: a secret, or a full K10 token of this server (default: the one in <data-dir>/server/token, created at the first start)." };
        var tokenFile = new PathOption("--token-file", PathKind.File, "File holding the server token (instead of --token).");
        var agentToken = new Option<string?>("--agent-token") { Description = "Agent join token (K10…::node:…): joins agents but not servers." };
        var agentTokenFile = new PathOption("--agent-token-file", PathKind.File, "File holding the agent token (instead of --agent-token).");
        var embeddedRegistry = new Option<bool>("--embedded-registry") { Description = "Also serve the registry, on the cluster's certificates; nodes authenticate with their client certificates (no password on disk)." };
        var registryListen = new Option<string>("--registry-listen") { Description = "Address and port of the embedded registry.", DefaultValueFactory = _ => "0.0.0.0:5000" };
        var nodeName = new Option<string?>("--node-name") { Description = "This server's node name (default: the host name)." };
        var renewWithin = new DurationOption("--cert-renew-within", "Renew certificates within this of their expiry, at each start (K3s: 120 days).", DefaultRenewWithin) { Positive = true };
        var heartbeat = new DurationOption("--heartbeat-interval", "How often members send heartbeats; a member is NotReady after 4 missed.", "10s") { Positive = true };

        var command = new Command("server",
            "Run the cluster server: the root of trust (a server CA and a client CA under <data-dir>/server/tls, certificates renewed within "
            + "--cert-renew-within of expiry at each start), the join tokens (<data-dir>/server/token, K3s's K10 format) and the membership "
            + "of the nodes that joined with them, served over HTTPS on --listen (GET /cacerts, join, heartbeats, node list).")
        {
            listen, dataDir, tlsSan, token, tokenFile, agentToken, agentTokenFile, embeddedRegistry, registryListen, nodeName, renewWithin, heartbeat,
        };
        command.WithExamples(
            "airlock server",
            "airlock server --tls-san server.airgap.local --agent-token \"$(openssl rand -hex 16)\"",
            "airlock server --embedded-registry --registry-listen 0.0.0.0:5000",
            "cat /var/lib/airlock/server/token   # give it to agents: airlock agent --server https://SERVER:9443 --token K10…");

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var problems = new List<string>();
            if (!RegistryServer.TryParseListen(parseResult.GetValue(listen)!, out var endPoint))
            {
                problems.Add($"--listen \"{parseResult.GetValue(listen)}\" is not host:port");
            }

            System.Net.IPEndPoint? registryEndPoint = null;
            if (parseResult.GetValue(embeddedRegistry) && !RegistryServer.TryParseListen(parseResult.GetValue(registryListen)!, out registryEndPoint))
            {
                problems.Add($"--registry-listen \"{parseResult.GetValue(registryListen)}\" is not host:port");
            }

            var serverToken = TokenValue(parseResult, token, tokenFile, problems);
            var nodeToken = TokenValue(parseResult, agentToken, agentTokenFile, problems);
            if (problems.Count > 0)
            {
                throw new UsageException(string.Join(Environment.NewLine + "airlock: ", problems));
            }

            using var loggerFactory = CliLogging.CreateFactory();
            var options = new ClusterServerOptions
            {
                DataDirectory = parseResult.GetValue(dataDir)!,
                Listen = endPoint,
                TlsSans = parseResult.GetValue(tlsSan) ?? [],
                Token = serverToken,
                AgentToken = nodeToken,
                NodeName = parseResult.GetValue(nodeName) ?? System.Net.Dns.GetHostName().ToLowerInvariant(),
                RenewWithin = renewWithin.GetDuration(parseResult),
                HeartbeatInterval = heartbeat.GetDuration(parseResult),
                EmbeddedRegistry = registryEndPoint,
                LoggerFactory = loggerFactory,
            };
            var invalid = options.Validate();
            if (invalid.Count > 0)
            {
                throw new UsageException(string.Join(Environment.NewLine + "airlock: ", invalid));
            }

            using var stop = StopSignals.Register(cancellationToken);
            await using var server = await ClusterServer.StartAsync(options, cancellationToken).ConfigureAwait(false);
            var logger = loggerFactory.CreateLogger("Airlock.Cluster");
            logger.LogInformation("Join token in {TokenFile}: airlock agent --server https://<this host>:{Port} --token \"$(cat {TokenFile})\"",
                new ServerDirectory(options.DataDirectory).Token, server.Address.Port, new ServerDirectory(options.DataDirectory).Token);
            if (server.Registry is { } registry)
            {
                logger.LogInformation("Embedded registry on port {Port}: nodes pull with ca_file <data-dir>/agent/server-ca.crt, cert_file "
                    + "<data-dir>/agent/client.crt and key_file <data-dir>/agent/client.key in registries.yaml; push with server/tls/client-admin.crt", registry.Address.Port);
            }

            await stop.WaitAsync().ConfigureAwait(false);
            await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return AirlockCli.ExitOk;
        });
        return command;
    }

    /// <summary>
    /// The value of a token flag or of its <c>-file</c> twin (an explicitly given file must exist); both is a usage error.
    /// </summary>
    public static string? TokenValue(ParseResult parseResult, Option<string?> value, PathOption file, List<string> problems)
    {
        var given = parseResult.GetValue(value);
        var path = parseResult.GetValue(file);
        if (path is null)
        {
            return given;
        }

        if (given is not null)
        {
            problems.Add($"{value.Name} and {file.Name} exclude each other");
            return null;
        }

        if (!File.Exists(path))
        {
            problems.Add($"{file.Name} {path} does not exist");
            return null;
        }

        var text = File.ReadAllText(path).Trim();
        if (text.Length == 0)
        {
            problems.Add($"{file.Name} {path} is empty");
            return null;
        }

        return text;
    }
}
