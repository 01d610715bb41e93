using System.Collections;
using System.CommandLine;
using System.Globalization;
using Airlock.Configuration;
using YamlDotNet.RepresentationModel;

namespace Airlock.Cli.Hosting;

/// <summary>
/// Fills flags the user did not type from <c>AIRLOCK_*</c> environment variables and from the config file,
/// by adding them as tokens and parsing again, so every value goes through the same option parsing and
/// validation whatever its source. Keys not known to the invoked verb are ignored: one config.yaml serves
/// every verb on a machine, as K3s's does for server and agent.
/// </summary>
internal static class ConfigSources
{
    public const string EnvironmentPrefix = "AIRLOCK_";

    /// <summary>
    /// The command line with the environment's and the config file's values added, and where each added value came from
    /// (options absent from <see cref="ConfiguredParse.Sources"/> were typed, or are defaults).
    /// </summary>
    public static ConfiguredParse Parse(RootCommand root, IReadOnlyList<string> args, IDictionary environment)
    {
        var first = root.Parse(args);
        var command = first.CommandResult.Command;
        var sources = new Dictionary<Option, ValueSource>();
        // Help shows the built-in defaults and needs no config file (nor a broken or missing one to stand in its way).
        if (command == root || first.Errors.Count > 0 && first.CommandResult.Command == root || IsHelpRequest(first))
        {
            return new ConfiguredParse(first, sources);
        }

        var configPath = first.GetValue(CommonOptions.Config);
        var configSource = configPath is not null ? ValueSource.CommandLine(CommonOptions.Config) : null;
        if (configPath is null && environment[EnvironmentPrefix + "CONFIG"] is string fromEnvironment)
        {
            (configPath, configSource) = (fromEnvironment, ValueSource.Environment(EnvironmentPrefix + "CONFIG"));
        }

        configPath ??= CommonOptions.DefaultConfigPath;
        var file = LoadConfigFile(configPath, configSource);

        var extra = new List<string>();
        foreach (var option in OptionsOf(command))
        {
            if (option == CommonOptions.Config || option.Name is "--help" or "--version")
            {
                continue;
            }

            var result = first.GetResult(option);
            if (result is not null && !result.Implicit)
            {
                continue;
            }

            var key = option.Name.TrimStart('-');
            var envName = EnvironmentPrefix + key.Replace('-', '_').ToUpperInvariant();
            if (environment[envName] is string envValue)
            {
                AddTokens(extra, option, [envValue]);
                sources[option] = ValueSource.Environment(envName);
            }
            else if (file.TryGetValue(key, out var values))
            {
                AddTokens(extra, option, values);
                sources[option] = ValueSource.ConfigFile(configPath, key);
            }
        }

        if (extra.Count == 0)
        {
            return new ConfiguredParse(first, sources);
        }

        // Flags the user typed come first and stay authoritative; options given twice keep the last for
        // scalars, so the added ones go before the user's own arguments after the verb path.
        var verbDepth = VerbDepth(command);
        var merged = new List<string>(args.Count + extra.Count);
        merged.AddRange(args.Take(verbDepth));
        merged.AddRange(extra);
        merged.AddRange(args.Skip(verbDepth));
        return new ConfiguredParse(root.Parse(merged), sources);
    }

    public static bool IsHelpRequest(ParseResult parsed) => parsed.Tokens.Any(t => t.Value is "--help" or "-h" or "-?");

    private static int VerbDepth(Command command)
    {
        var depth = 0;
        for (Symbol? s = command; s is Command c && c is not RootCommand; s = c.Parents.FirstOrDefault())
        {
            depth++;
        }

        return depth;
    }

    /// <summary>The options <paramref name="command"/> takes: its own and the recursive ones of the verbs above it.</summary>
    internal static IEnumerable<Option> OptionsOf(Command command)
    {
        var seen = new HashSet<Option>();
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault())
        {
            foreach (var option in c.Options)
            {
                if ((c == command || option.Recursive) && seen.Add(option))
                {
                    yield return option;
                }
            }
        }
    }

    private static void AddTokens(List<string> tokens, Option option, IReadOnlyList<string> values)
    {
        var isFlag = option.ValueType == typeof(bool);
        foreach (var value in values)
        {
            if (isFlag)
            {
                tokens.Add($"{option.Name}={value.ToLowerInvariant()}");
            }
            else
            {
                tokens.Add(option.Name);
                tokens.Add(value);
            }
        }
    }

    /// <summary>
    /// Reads a flat YAML map of flag names to scalars or lists of scalars. The built-in default path may be absent
    /// (<paramref name="explicitSource"/> null); one given explicitly must exist, as every path flag's value must.
    /// </summary>
    internal static Dictionary<string, IReadOnlyList<string>> LoadConfigFile(string path, ValueSource? explicitSource)
    {
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            if (explicitSource is not null)
            {
                throw new MissingPathException($"config file \"{path}\" does not exist (from {explicitSource.Description}); create it, or {explicitSource.Fix}");
            }

            return result;
        }

        IReadOnlyList<YamlNode> documents;
        try
        {
            using var reader = new StreamReader(path);
            documents = YamlWalker.LoadDocuments(reader);
        }
        catch (YamlDotNet.Core.YamlException ex)
        {
            throw new ConfigFileException($"{path}:{ex.Start.Line}:{ex.Start.Column}: {ex.Message}");
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new ConfigFileException($"config file {path} cannot be read: {ex.Message}");
        }

        if (documents.Count == 0 || YamlWalker.IsNull(documents[0]))
        {
            return result;
        }

        var yaml = new YamlWalker();
        foreach (var (key, _, values) in yaml.FlatSettings(documents[0], path))
        {
            result[key] = values;
        }

        if (yaml.HasErrors)
        {
            throw new ConfigFileException(string.Join(Environment.NewLine,
                yaml.Problems.Select(p => string.Create(CultureInfo.InvariantCulture, $"{path}:{p.Line}: {p.Message}"))));
        }

        return result;
    }
}

internal sealed class ConfigFileException(string message) : Exception(message);

/// <summary>A path given explicitly names nothing: exit 1, nothing done.</summary>
internal sealed class MissingPathException(string message) : Exception(message);

/// <summary>A parsed command line and where the values it did not type came from.</summary>
internal sealed record ConfiguredParse(ParseResult Result, IReadOnlyDictionary<Option, ValueSource> Sources);
