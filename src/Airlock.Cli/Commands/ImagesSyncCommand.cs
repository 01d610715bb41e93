using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Airlock.Bundles.Sync;
using Airlock.Cli.Hosting;

namespace Airlock.Cli.Commands;

/// <summary>
/// <c>airlock images sync -f sync.yaml [--once|--check]</c>: mirror images between registries from a regsync
/// configuration file. Exit codes: 0 all images synced (or, with <c>--check</c>, all up to date); 1 an image
/// failed (or, with <c>--check</c>, something would be copied); 2 the file is invalid (every problem is listed
/// with file:line:column). The file is <c>-f</c>, not regsync's <c>-c</c>, which names Airlock's own config;
/// regsync's own command shapes (<c>once|server|check -c FILE</c>) are accepted too, see <see cref="FromRegsyncForm"/>.
/// </summary>
internal static class ImagesSyncCommand
{
    private static readonly Dictionary<string, string> RegsyncVerbs = new(StringComparer.Ordinal)
    {
        ["once"] = "--once",
        ["server"] = "--watch",
        ["check"] = "--check",
    };

    /// <summary>
    /// regsync's command line, as the Canonical guide runs it (<c>regsync once -c sync.yaml</c>), spelled after
    /// <c>images sync</c>: <c>once</c>, <c>server</c> and <c>check</c> become <c>--once</c>, <c>--watch</c> and
    /// <c>--check</c>, and their <c>-c FILE</c> (regsync's config) becomes <c>-f FILE</c>. Any other command line is
    /// returned as it is, so <c>-c</c> keeps naming Airlock's config.yaml everywhere else.
    /// </summary>
    public static IReadOnlyList<string> FromRegsyncForm(IReadOnlyList<string> args)
    {
        if (args.Count < 3 || args[0] != "images" || args[1] != "sync" || !RegsyncVerbs.TryGetValue(args[2], out var mode))
        {
            return args;
        }

        var rest = args.Skip(3).ToList();
        var hasFile = rest.Any(a => a is "-f" or "--file" || a.StartsWith("--file=", StringComparison.Ordinal) || a.StartsWith("-f=", StringComparison.Ordinal));
        var translated = new List<string> { "images", "sync", mode };
        for (var i = 0; i < rest.Count; i++)
        {
            var arg = rest[i];
            if (!hasFile && arg is "-c" or "--config" && i + 1 < rest.Count)
            {
                translated.Add("--file");
                translated.Add(rest[++i]);
            }
            else if (!hasFile && (arg.StartsWith("-c=", StringComparison.Ordinal) || arg.StartsWith("--config=", StringComparison.Ordinal)))
            {
                translated.Add("--file=" + arg[(arg.IndexOf('=', StringComparison.Ordinal) + 1)..]);
            }
            else
            {
                translated.Add(arg);
            }
        }

        return translated;
    }

    public static Command Create()
    {
        var file = new PathOption("--file", PathKind.File,
            "regsync configuration (version 1): creds, defaults (parallel, interval) and sync entries of type image, repository or registry; values may use {{ env \"NAME\" }} and {{ file \"PATH\" }}.",
            aliases: "-f")
        {
            Required = true,
        };
        var once = new Option<bool>("--once") { Description = "Run one pass and exit, as regsync once does (the default; --watch repeats passes instead)." };
        var watch = new Option<bool>("--watch") { Description = "Repeat a pass every defaults.interval (default 60m) until SIGTERM, like regsync server." };
        var check = new Option<bool>("--check") { Description = "Copy nothing: report per image whether it is up to date or would be copied; exit 1 if anything would be." };
        var output = CommonOptions.Output("text");
        var command = new Command("sync", "Mirror images between registries as a regsync configuration file describes; images already up to date are skipped.")
            .WithExamples(
                "MIRROR=10.10.10.10:5050 airlock images sync -f sync-images.yaml --once",
                "airlock images sync -f sync-images.yaml --check --output json",
                "airlock images sync -f sync-images.yaml --watch --creds user:pass",
                "MIRROR=10.10.10.10:5050 airlock images sync once -c sync-images.yaml   # regsync's own form: once|server|check -c FILE");
        command.Options.Add(file);
        command.Options.Add(once);
        command.Options.Add(watch);
        command.Options.Add(check);
        command.Options.Add(output);
        var access = RegistryAccessOptions.AddTo(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            if (parseResult.GetValue(once) && parseResult.GetValue(watch))
            {
                throw new UsageException("give --once or --watch, not both");
            }

            var writer = parseResult.InvocationConfiguration.Output;
            var errors = parseResult.InvocationConfiguration.Error;
            var path = parseResult.GetValue(file)!;

            SyncConfig config;
            try
            {
                var (parsed, warnings) = SyncConfigReader.Parse(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false), path,
                    Environment.GetEnvironmentVariable, File.ReadAllText);
                foreach (var warning in warnings)
                {
                    await errors.WriteLineAsync($"airlock: {warning}").ConfigureAwait(false);
                }

                config = parsed;
            }
            catch (SyncConfigException ex)
            {
                throw new UsageException(ex.Message);
            }

            var checkOnly = parseResult.GetValue(check);
            var format = parseResult.GetValue(output);
            using var sync = new ImageSync(config, access.Options(parseResult));
            // The per-image lines are the text output; the data formats and the table print once, at the end.
            var progress = format is "text" ? new Lines(writer) : null;
            if (parseResult.GetValue(watch))
            {
                // SIGTERM/SIGINT end the loop with exit 0; a pass cut short leaves no partial tag, as the
                // graph walk writes a manifest only after everything under it.
                using var stop = StopSignals.Register(cancellationToken);
                try
                {
                    await sync.WatchAsync(checkOnly, progress, results => PrintAsync(writer, format, results), stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.Token.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    // Stopped by a signal in the middle of a pass.
                }

                return AirlockCli.ExitOk;
            }

            var results = await sync.RunAsync(checkOnly, progress, cancellationToken).ConfigureAwait(false);
            await PrintAsync(writer, format, results).ConfigureAwait(false);
            var bad = results.Any(r => r.Status == SyncStatus.Failed || (checkOnly && r.Status == SyncStatus.WouldCopy));
            return bad ? AirlockCli.ExitError : AirlockCli.ExitOk;
        });
        return command;
    }

    private static async Task PrintAsync(TextWriter writer, string? format, IReadOnlyList<SyncResult> results)
    {
        switch (format)
        {
            case "json" or "yaml":
                DataOutput.Write(writer, format, results.ToList(), SyncJson.Default.ListSyncResult);
                break;
            case "table":
                DataOutput.WriteTable(writer, results, ("STATUS", r => Describe(r.Status)), ("SOURCE", r => r.Source), ("TARGET", r => r.Target),
                    ("DIGEST", r => r.Digest), ("ERROR", r => r.Error));
                break;
            default:
                var counts = results.GroupBy(r => r.Status).OrderBy(g => g.Key).Select(g => $"{g.Count()} {Describe(g.Key)}");
                await writer.WriteLineAsync($"{results.Count} images: {string.Join(", ", counts)}").ConfigureAwait(false);
                break;
        }
    }

    private static string Describe(SyncStatus status) => status switch
    {
        SyncStatus.UpToDate => "up to date",
        SyncStatus.WouldCopy => "would copy",
        SyncStatus.Copied => "copied",
        _ => "failed",
    };

    /// <summary>One line per image as it finishes.</summary>
    private sealed class Lines(TextWriter writer) : IProgress<SyncResult>
    {
        public void Report(SyncResult value)
        {
            var line = value.Status == SyncStatus.Failed
                ? $"failed {value.Source} -> {value.Target}: {value.Error}"
                : $"{Describe(value.Status)} {value.Source} -> {value.Target} ({value.Digest})";
            lock (writer)
            {
                writer.WriteLine(line);
            }
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<SyncResult>))]
internal sealed partial class SyncJson : JsonSerializerContext
{
}
