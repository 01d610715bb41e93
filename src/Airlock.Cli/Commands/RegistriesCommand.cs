using System.CommandLine;
using System.Text.Json;
using Airlock.Cli.Hosting;
using Airlock.Node;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock registries render|validate</c>: K3s registries.yaml → containerd hosts.toml / config.toml.</summary>
internal static class RegistriesCommand
{
    public const string DefaultRegistriesPath = "/etc/airlock/registries.yaml";

    public static Command Create()
    {
        var command = new Command("registries", "Render registries.yaml (K3s format) for containerd, or check it.")
            .WithExamples(
                "airlock registries validate",
                "airlock registries render --diff",
                "airlock registries render --containerd-version 1.6 --sandbox-image registry.example.com/pause:3.10");
        command.Subcommands.Add(Render());
        command.Subcommands.Add(Validate());
        return command;
    }

    private static PathOption RegistriesOption() =>
        new("--registries", PathKind.File, $"registries.yaml in K3s format (default {DefaultRegistriesPath}, which may be absent: no registries).", DefaultRegistriesPath);

    private static Command Render()
    {
        var registries = RegistriesOption();
        var dataDir = CommonOptions.DataDir();
        var root = new Option<string?>("--containerd-root") { Description = "containerd's root directory (default: containerd's own)." };
        var state = new Option<string?>("--containerd-state") { Description = "containerd's state directory (default: containerd's own)." };
        var address = new Option<string?>("--containerd-address") { Description = "containerd's gRPC socket (default: containerd's own)." };
        var mirrorAddress = MirrorCommand.AddressOption(
            "Point containerd at the node-local mirror ('airlock mirror', or the agent's) listening here for every registry stock containerd cannot "
            + $"serve as registries.yaml says (a rewrite, or no default endpoint); other hosts.toml files stay as K3s writes them. Default "
            + $"{MirrorCommand.DefaultAddress}, the mirror's and the agent's own. 'off' writes K3s's files unchanged, for K3s's own containerd: "
            + "stock containerd would then ignore rewrites and fall back to the registry itself.");
        // Must exist, as the containerd reading it has it: a typo would write a tree nobody reads and report success,
        // while containerd goes on with the old one (perhaps falling back to the registry itself).
        var hostsDir = new PathOption(
            "--hosts-dir",
            PathKind.Directory,
            "Write only the hosts.toml tree, DIR/<registry>/hosts.toml, for a containerd whose config already reads DIR "
            + "(Canonical Kubernetes: /var/snap/k8s/common/etc/containerd/hosts.d); no config.toml, no proxy.env.");
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the files that would be written; change nothing." };
        var diff = new Option<bool>("--diff") { Description = "Print a unified diff of what would change; change nothing. Exit 0 when nothing would change, 1 otherwise." };

        var command = new Command(
            "render",
            "Write <data-dir>/agent/etc/containerd/config.toml and certs.d/<registry>/hosts.toml from registries.yaml, as K3s does, "
            + "and proxy.env (HTTP_PROXY/HTTPS_PROXY/NO_PROXY; CONTAINERD_-prefixed variables win) when a proxy is set.")
        {
            registries, dataDir,
        };
        var flags = ContainerdConfigFlags.AddTo(command);
        command.Options.Add(root);
        command.Options.Add(state);
        command.Options.Add(address);
        flags.AddProxyTo(command);
        command.Options.Add(mirrorAddress);
        command.Options.Add(hostsDir);
        command.Options.Add(dryRun);
        command.Options.Add(diff);
        command.WithExamples(
            "airlock registries render",
            "airlock registries render --registries ./registries.yaml --data-dir /var/lib/airlock --dry-run",
            "airlock registries render --diff   # exit 1 when the files on disk are out of date",
            "airlock registries render --containerd-version 1.6 --sandbox-image registry.example.com/pause:3.10 --disable-default-registry-endpoint",
            "airlock registries render --disable-default-registry-endpoint   # containerd pulls only through 'airlock mirror' on 127.0.0.1:5100",
            "airlock registries render --mirror-address off   # K3s's files unchanged, for K3s's own containerd",
            "airlock registries render --registries registries.yaml --hosts-dir /var/snap/k8s/common/etc/containerd/hosts.d   # Canonical Kubernetes");
        command.SetAction(async (parseResult, ct) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            if (parseResult.GetValue(dryRun) && parseResult.GetValue(diff))
            {
                throw new UsageException("--dry-run and --diff cannot be combined");
            }

            var path = parseResult.GetValue(registries)!;
            // Only the default may be absent (checked before the verb runs; read again here, so a file removed meanwhile is refused too).
            var mayBeAbsent = parseResult.GetResult(registries) is null or { Implicit: true };
            var (file, readProblems) = await RegistriesFileReader.ReadAsync(path, missingIsEmpty: mayBeAbsent, ct).ConfigureAwait(false);
            var problems = RegistriesValidator.Validate(file, readProblems);
            foreach (var problem in problems)
            {
                await error.WriteLineAsync($"airlock: {problem}").ConfigureAwait(false);
            }

            // Rendering an unreadable file as "no registries" would silently drop every mirror and credential.
            if (problems.Any(p => p.Severity == ProblemSeverity.Fatal))
            {
                await error.WriteLineAsync($"airlock: {path} cannot be used; nothing was rendered").ConfigureAwait(false);
                return AirlockCli.ExitError;
            }

            var nodeMirror = MirrorCommand.ParseAddressOrOff(parseResult.GetValue(mirrorAddress)!);
            var disableDefault = parseResult.GetValue(flags.DisableDefaultEndpoint);
            RenderPlan plan;
            if (parseResult.GetValue(hostsDir) is { } hosts)
            {
                plan = await ContainerdRenderer.PlanHostsAsync(file, Path.GetFullPath(hosts), HostsTomlWriter.DefaultGenerator, disableDefault, nodeMirror, ct)
                    .ConfigureAwait(false);
            }
            else
            {
                var options = await flags.ConfigAsync(parseResult, parseResult.GetValue(dataDir)!, parseResult.GetValue(root), parseResult.GetValue(state),
                    parseResult.GetValue(address), ct).ConfigureAwait(false);
                plan = await ContainerdRenderer.PlanAsync(file, options, disableDefault, ct, flags.ProxyEnvironment(parseResult), nodeMirror).ConfigureAwait(false);
            }

            foreach (var host in new RegistryEndpoints(file, disableDefault).Hosts.Where(h => h.NeedsNodeMirror))
            {
                // With off, K3s's output is still written (K3s's own containerd honours it); stock containerd will not.
                await error.WriteLineAsync(nodeMirror is null
                    ? $"airlock: warning: registry \"{host.Key}\" has rewrites or no default endpoint, which stock containerd ignores "
                        + "(it drops rewrites and falls back to the registry itself); run 'airlock mirror' and render without --mirror-address off"
                    : $"airlock: registry \"{host.Key}\" is pulled only through the node-local mirror at {nodeMirror} (it has rewrites or no default "
                        + "endpoint): run 'airlock mirror' or 'airlock agent' on this node").ConfigureAwait(false);
            }

            if (parseResult.GetValue(diff))
            {
                await output.WriteAsync(plan.Diff()).ConfigureAwait(false);
                return plan.HasChanges ? AirlockCli.ExitError : AirlockCli.ExitOk;
            }

            if (parseResult.GetValue(dryRun))
            {
                foreach (var planned in plan.Files)
                {
                    await output.WriteLineAsync($"# {planned.Path}{(planned.Changes ? string.Empty : " (unchanged)")}").ConfigureAwait(false);
                    await output.WriteAsync(planned.Content).ConfigureAwait(false);
                    await output.WriteLineAsync().ConfigureAwait(false);
                }

                foreach (var stale in plan.StaleFiles)
                {
                    await output.WriteLineAsync($"# would remove {stale.Path}").ConfigureAwait(false);
                }

                return AirlockCli.ExitOk;
            }

            await ContainerdRenderer.ApplyAsync(plan, ct).ConfigureAwait(false);
            foreach (var planned in plan.Files)
            {
                await output.WriteLineAsync($"{(planned.Changes ? "wrote" : "unchanged")} {planned.Path}").ConfigureAwait(false);
            }

            foreach (var stale in plan.StaleFiles)
            {
                await output.WriteLineAsync($"removed {stale.Path}").ConfigureAwait(false);
            }

            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command Validate()
    {
        var registries = RegistriesOption();
        var format = new Option<string>("--output")
        {
            Description = "Output format: text (file:line: message) or json.",
            DefaultValueFactory = _ => "text",
        };
        format.AcceptOnlyFromAmong("text", "json");
        var command = new Command("validate", "Check registries.yaml and report every problem with its line. Exit 1 when there are errors (warnings alone exit 0).")
        {
            registries, format,
        };
        command.WithExamples(
            "airlock registries validate",
            "airlock registries validate --registries ./registries.yaml --output json");
        command.SetAction(async (parseResult, ct) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var path = parseResult.GetValue(registries)!;
            var (file, readProblems) = await RegistriesFileReader.ReadAsync(path, missingIsEmpty: false, ct).ConfigureAwait(false);
            var problems = RegistriesValidator.Validate(file, readProblems);
            if (parseResult.GetValue(format) == "json")
            {
                var rows = problems.Select(p => new RegistriesValidationProblem(p.Source, p.Line, p.Severity.ToString().ToLowerInvariant(), p.Message)).ToArray();
                DataOutput.Write(output, "json", new RegistriesValidationReport(path, rows), CliJson.Default.RegistriesValidationReport);
            }
            else if (problems.Count == 0)
            {
                await output.WriteLineAsync($"{path}: ok").ConfigureAwait(false);
            }
            else
            {
                foreach (var problem in problems)
                {
                    await output.WriteLineAsync(problem.ToString()).ConfigureAwait(false);
                }
            }

            return problems.Any(p => p.Severity >= ProblemSeverity.Error) ? AirlockCli.ExitError : AirlockCli.ExitOk;
        });
        return command;
    }
}
