using System.CommandLine;
using Airlock.Cli.Hosting;
using Airlock.Node.Preflight;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock check</c>: pre-flight checks K3s users otherwise discover by failure.</summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var dataDir = CommonOptions.DataDir();
        var output = CommonOptions.Output("text");
        var command = new Command("check", "Check this host and the configuration before running a node: routes, containerd/runc, cgroups, kernel modules, sysctls, disk, clock, cluster settings, proxy.")
        {
            dataDir,
            output,
        };
        command.WithExamples(
            "airlock check",
            "airlock check --config /etc/rancher/k3s/config.yaml --output json",
            "airlock check --data-dir /srv/airlock");
        command.SetAction(parseResult =>
        {
            var configPath = parseResult.GetValue(CommonOptions.Config) ?? CommonOptions.DefaultConfigPath;
            ClusterSettings settings;
            try
            {
                settings = ClusterSettings.Load(configPath);
            }
            catch (InvalidDataException ex)
            {
                parseResult.InvocationConfiguration.Error.WriteLine($"airlock: {ex.Message}");
                return AirlockCli.ExitError;
            }

            var host = new PreflightHost { DataDir = parseResult.GetValue(dataDir)! };
            var results = PreflightRunner.Run(host, settings, airlockKeys: ConfigKeys(parseResult.RootCommandResult.Command));
            var format = parseResult.GetValue(output)!;
            var writer = parseResult.InvocationConfiguration.Output;
            if (format is "text")
            {
                foreach (var result in results)
                {
                    writer.WriteLine($"{Label(result.Status),-5} {result.Name}: {result.Message}");
                    if (result.Fix is not null && result.Status != CheckStatus.Pass)
                    {
                        writer.WriteLine($"      fix: {result.Fix}");
                    }
                }

                var failed = results.Count(r => r.Status == CheckStatus.Fail);
                var warned = results.Count(r => r.Status == CheckStatus.Warn);
                writer.WriteLine(failed == 0 ? $"ready ({warned} warning(s))" : $"{failed} check(s) failed, {warned} warning(s)");
            }
            else
            {
                DataOutput.Write(writer, format, results, CliJson.Default.IReadOnlyListCheckResult,
                    ("STATUS", r => Label(r.Status)), ("CHECK", r => r.Name), ("MESSAGE", r => r.Message), ("FIX", r => r.Status == CheckStatus.Pass ? null : r.Fix));
            }

            return PreflightRunner.AnyFailed(results) ? AirlockCli.ExitError : AirlockCli.ExitOk;
        });
        return command;
    }

    /// <summary>Every long flag name of every verb: what config.yaml may hold besides K3s's keys.</summary>
    private static IReadOnlyCollection<string> ConfigKeys(Command root)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<Command>([root]);
        while (pending.TryPop(out var command))
        {
            keys.UnionWith(command.Options.Select(o => o.Name.TrimStart('-')));
            foreach (var sub in command.Subcommands)
            {
                pending.Push(sub);
            }
        }

        return keys;
    }

    private static string Label(CheckStatus status) => status switch
    {
        CheckStatus.Pass => "OK",
        CheckStatus.Warn => "WARN",
        _ => "FAIL",
    };
}
