using System.CommandLine;
using Airlock.Cli.Hosting;
using Airlock.Cluster;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Tokens;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock token create|list|delete</c>: bootstrap tokens, as K3s's <c>k3s token</c> verbs.</summary>
internal static class TokenCommand
{
    public static Command Create()
    {
        var command = new Command("token", "Manage bootstrap tokens: agent join tokens with a lifetime, kept on the server as hashes.");
        command.Subcommands.Add(CreateCreate());
        command.Subcommands.Add(CreateList());
        command.Subcommands.Add(CreateDelete());
        command.WithExamples("airlock token create --ttl 24h --description \"rack 3\"", "airlock token list", "airlock token delete abc123");
        return command;
    }

    private static Command CreateCreate()
    {
        var dataDir = CommonOptions.DataDir();
        var ttl = new DurationOption("--ttl", "How long the token joins agents (0 or off: until deleted).", "24h") { AllowsOff = true };
        var description = new Option<string?>("--description") { Description = "What the token is for, shown by token list." };
        var command = new Command("create", "Create a bootstrap token and print it (K10<CA hash>::<id>.<secret>); only its hash is kept.")
        {
            dataDir, ttl, description,
        };
        command.WithExamples("airlock token create", "airlock token create --ttl 2h --description \"new workers\"", "airlock token create --ttl 0");
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var directory = new ServerDirectory(parseResult.GetValue(dataDir)!);
            var caHash = CaHash(directory);
            var store = new BootstrapTokenStore(directory.Root, TimeProvider.System);
            var (info, secret) = await store.CreateAsync(ttl.GetDurationOrOff(parseResult), parseResult.GetValue(description), cancellationToken).ConfigureAwait(false);
            var token = JoinToken.Create(caHash, JoinTokenKind.Bootstrap, secret, info.Id);
            await parseResult.InvocationConfiguration.Output.WriteLineAsync(token.ToString()).ConfigureAwait(false);
            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command CreateList()
    {
        var dataDir = CommonOptions.DataDir();
        var output = CommonOptions.Output();
        var command = new Command("list", "List the bootstrap tokens (never their secrets).") { dataDir, output };
        command.WithExamples("airlock token list", "airlock token list --output json");
        command.SetAction(parseResult =>
        {
            var directory = new ServerDirectory(parseResult.GetValue(dataDir)!);
            var tokens = new BootstrapTokenStore(directory.Root, TimeProvider.System).List();
            var now = DateTimeOffset.UtcNow;
            DataOutput.Write(parseResult.InvocationConfiguration.Output, parseResult.GetValue(output)!, tokens, TokenJson.Default.IReadOnlyListBootstrapTokenInfo,
                ("ID", t => t.Id),
                ("EXPIRES", t => t.Expires is { } at ? at.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture) : "never"),
                ("STATUS", t => t.IsExpired(now) ? "expired" : "valid"),
                ("DESCRIPTION", t => t.Description));
            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command CreateDelete()
    {
        var dataDir = CommonOptions.DataDir();
        var ids = new Argument<string[]>("id") { Description = "Ids of the tokens to delete (the 6 characters before the dot).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("delete", "Delete bootstrap tokens: they join no more nodes (nodes that joined with them stay).") { dataDir, ids };
        command.WithExamples("airlock token delete abc123", "airlock token delete abc123 def456");
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var directory = new ServerDirectory(parseResult.GetValue(dataDir)!);
            var given = parseResult.GetValue(ids)!.Select(id => id.Contains('.', StringComparison.Ordinal) ? id[..id.IndexOf('.', StringComparison.Ordinal)] : id).ToList();
            var unknown = await new BootstrapTokenStore(directory.Root, TimeProvider.System).DeleteAsync(given, cancellationToken).ConfigureAwait(false);
            foreach (var id in given.Except(unknown))
            {
                await parseResult.InvocationConfiguration.Output.WriteLineAsync($"deleted bootstrap token {id}").ConfigureAwait(false);
            }

            if (unknown.Count > 0)
            {
                await parseResult.InvocationConfiguration.Error.WriteLineAsync($"airlock: no bootstrap token {string.Join(", ", unknown)} (see airlock token list)").ConfigureAwait(false);
                return AirlockCli.ExitError;
            }

            return AirlockCli.ExitOk;
        });
        return command;
    }

    /// <summary>The hash of the server CA bundle, which every token this server prints carries.</summary>
    private static string CaHash(ServerDirectory directory)
    {
        var bundle = Path.Combine(directory.Tls, ServerPki.ServerCaName + ".crt");
        return File.Exists(bundle)
            ? JoinToken.HashCaBundle(File.ReadAllBytes(bundle))
            : throw new FileNotFoundException($"{directory.Root} holds no cluster (no {bundle}): start `airlock server --data-dir {directory.DataDirectory}` once first, or give its --data-dir");
    }
}
