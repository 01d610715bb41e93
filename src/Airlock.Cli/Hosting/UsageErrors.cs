using System.CommandLine;
using System.CommandLine.Parsing;
using Airlock.Configuration;

namespace Airlock.Cli.Hosting;

/// <summary>
/// Turns what the parser could not place into errors that say what was meant: an unknown verb or flag gets the
/// closest known one ("did you mean --platform?"). A flag-like word the parser took as a positional argument is
/// an unknown flag too: <c>images save --platfrom x img</c> must not save an image named <c>--platfrom</c>.
/// </summary>
internal static class UsageErrors
{
    /// <summary>Every usage error of the parse, reworded; with <paramref name="helpRequested"/> only words nobody knows (help needs no required flags).</summary>
    public static IReadOnlyList<string> Describe(ParseResult parsed, bool helpRequested)
    {
        var command = parsed.CommandResult.Command;
        var path = AirlockCli.CommandPath(command);
        var messages = new List<string>();
        var unmatched = parsed.UnmatchedTokens.ToHashSet(StringComparer.Ordinal);
        foreach (var token in parsed.UnmatchedTokens.Distinct(StringComparer.Ordinal))
        {
            messages.Add(Unknown(command, path, token));
        }

        foreach (var token in FlagLikeArguments(parsed))
        {
            messages.Add(UnknownFlag(command, path, token));
        }

        // "Required command was not provided" says less than the unknown verb reported above.
        var missingVerb = unmatched.Count > 0 && command.Subcommands.Count > 0;
        if (!helpRequested)
        {
            // The parser's own wording for the rest (missing values, bad values, required flags); the unmatched
            // tokens' errors were reworded above.
            messages.AddRange(parsed.Errors.Where(e => !(missingVerb && e.SymbolResult is CommandResult))
                .Select(e => e.Message)
                .Where(m => !unmatched.Any(t => m.Contains($"'{t}'", StringComparison.Ordinal))));
        }
        else
        {
            // A value the flag does not accept is wrong with or without --help (install.sh checks flags this way).
            messages.AddRange(parsed.Errors.Where(e => e.SymbolResult is OptionResult { Tokens.Count: > 0 } or ArgumentResult { Tokens.Count: > 0 })
                .Select(e => e.Message)
                .Where(m => !unmatched.Any(t => m.Contains($"'{t}'", StringComparison.Ordinal))));
        }

        return messages.Distinct(StringComparer.Ordinal).ToList();
    }

    private static string Unknown(Command command, string path, string token)
    {
        if (token.StartsWith('-') && token.Length > 1)
        {
            return UnknownFlag(command, path, token);
        }

        if (command.Subcommands.Count > 0)
        {
            var verbs = command.Subcommands.Where(c => !c.Hidden).SelectMany(c => c.Aliases.Prepend(c.Name));
            return Suggest($"'{path}' has no command '{token}'", Spelling.Closest(token, verbs) is { } verb ? $"'{verb}'" : null,
                $" (commands: {string.Join(", ", command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))})");
        }

        return $"unexpected argument '{token}' for '{path}'";
    }

    private static string UnknownFlag(Command command, string path, string token)
    {
        var name = token.Split('=', 2)[0];
        return Suggest($"unknown flag {name} for '{path}'", Spelling.Closest(name, FlagNames(command)), string.Empty);
    }

    private static string Suggest(string message, string? closest, string otherwise) =>
        closest is null ? message + otherwise : $"{message}; did you mean {closest}?";

    /// <summary>The flags a command accepts: its own and those its parents share with it.</summary>
    public static IEnumerable<string> FlagNames(Command command) => Options(command).SelectMany(o => o.Aliases.Prepend(o.Name));

    private static IEnumerable<Option> Options(Command command)
    {
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault())
        {
            foreach (var option in c.Options.Where(o => !o.Hidden && (c == command || o.Recursive)))
            {
                yield return option;
            }
        }
    }

    /// <summary>
    /// Positional values that look like flags (<c>--x</c>, <c>-x</c>), unless they follow <c>--</c> or are the value
    /// of the flag before them. <c>-</c> alone (stdin) is a value.
    /// </summary>
    private static IEnumerable<string> FlagLikeArguments(ParseResult parsed)
    {
        Token? previous = null;
        foreach (var token in parsed.Tokens)
        {
            if (token.Type == TokenType.DoubleDash)
            {
                yield break;
            }

            if (token.Type == TokenType.Argument && LooksLikeFlag(token.Value) && !IsValueOf(previous, parsed.CommandResult.Command))
            {
                yield return token.Value;
            }

            previous = token;
        }
    }

    private static bool LooksLikeFlag(string value) =>
        value.Length > 1 && value[0] == '-' && (value[1] == '-' ? value.Length > 2 && char.IsLetter(value[2]) : char.IsLetter(value[1]));

    private static bool IsValueOf(Token? previous, Command command) =>
        previous is { Type: TokenType.Option }
        && Options(command).FirstOrDefault(o => o.Name == previous.Value || o.Aliases.Contains(previous.Value)) is { } option
        && option.ValueType != typeof(bool) && option.Arity.MaximumNumberOfValues > 0;
}
