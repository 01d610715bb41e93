using System.Collections;
using System.CommandLine;
using Airlock.Cli.Commands;

namespace Airlock.Cli.Hosting;

/// <summary>
/// Builds the <c>airlock</c> command tree and runs it. Values come from, in order of precedence:
/// command-line flags, <c>AIRLOCK_*</c> environment variables, <c>/etc/airlock/config.yaml</c> (keys are the
/// long flag names), then defaults — the same layering K3s uses.
/// </summary>
internal static class AirlockCli
{
    public const int ExitOk = 0;
    public const int ExitError = 1;
    public const int ExitUsage = 2;

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Airlock: the image side of an air-gapped Kubernetes site — registry, bundles, node and cluster.");
        root.Options.Add(CommonOptions.Config);
        foreach (var verb in Verbs())
        {
            root.Subcommands.Add(verb);
        }

        CommandExamples.InstallHelp(root);
        return root;
    }

    // Each verb lives in its own file under Commands/ and is listed here once.
    private static IEnumerable<Command> Verbs() =>
    [
        CheckCommand.Create(),
        VersionCommand.Create(),
        RegistriesCommand.Create(),
        RegistryCommand.Create(),
        MirrorCommand.Create(),
        ImagesCommand.Create(),
        AgentCommand.Create(),
        ServerCommand.Create(),
        TokenCommand.Create(),
        NodeCommand.Create(),
        P2pCommand.Create(),
        CertificateCommand.Create(),
    ];

    public static async Task<int> RunAsync(string[] args, IDictionary environment, TextWriter? output = null, TextWriter? error = null)
    {
        output ??= Console.Out;
        error ??= Console.Error;
        var root = BuildRoot();
        ConfiguredParse configured;
        try
        {
            configured = ConfigSources.Parse(root, ImagesSyncCommand.FromRegsyncForm(args), environment);
        }
        catch (ConfigFileException ex)
        {
            await error.WriteLineAsync($"airlock: {ex.Message}").ConfigureAwait(false);
            return ExitUsage;
        }
        catch (MissingPathException ex)
        {
            await error.WriteLineAsync($"airlock: {ex.Message}").ConfigureAwait(false);
            return ExitError;
        }

        var parsed = configured.Result;
        var usageErrors = UsageErrors.Describe(parsed, ConfigSources.IsHelpRequest(parsed));
        if (usageErrors.Count > 0)
        {
            foreach (var usageError in usageErrors)
            {
                await error.WriteLineAsync($"airlock: {usageError}").ConfigureAwait(false);
            }

            await error.WriteLineAsync($"Run '{CommandPath(parsed.CommandResult.Command)} --help' for usage.").ConfigureAwait(false);
            return ExitUsage;
        }

        // Before the verb runs, so a typo in a path never gets as far as removing or writing anything.
        var missing = ConfigSources.IsHelpRequest(parsed) ? [] : PathOption.FindMissing(parsed, configured.Sources);
        if (missing.Count > 0)
        {
            foreach (var problem in missing)
            {
                await error.WriteLineAsync($"airlock: {problem}").ConfigureAwait(false);
            }

            await error.WriteLineAsync("airlock: nothing was done: a path given explicitly must exist (only a built-in default may be absent)").ConfigureAwait(false);
            return ExitError;
        }

        using var cancellation = new CancellationTokenSource();
        var invocation = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        try
        {
            return await parsed.InvokeAsync(invocation, cancellation.Token).ConfigureAwait(false);
        }
        catch (UsageException ex)
        {
            await error.WriteLineAsync($"airlock: {ex.Message}").ConfigureAwait(false);
            return ExitUsage;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("airlock: cancelled").ConfigureAwait(false);
            return ExitError;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Every failure a user can meet (registry errors, bad archives, digest mismatches, I/O) carries a
            // message that names what failed; the stack trace is for developers: AIRLOCK_DEBUG=1.
            await error.WriteLineAsync($"airlock: {ex.Message}").ConfigureAwait(false);
            if (environment["AIRLOCK_DEBUG"] is "1" or "true")
            {
                await error.WriteLineAsync(ex.ToString()).ConfigureAwait(false);
            }

            return ExitError;
        }
    }

    public static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault())
        {
            names.Add(c is RootCommand ? "airlock" : c.Name);
        }

        names.Reverse();
        return string.Join(' ', names);
    }
}

/// <summary>A bad combination of flags found after parsing; exits with the usage code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
