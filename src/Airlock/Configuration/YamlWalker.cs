using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Airlock.Configuration;

/// <summary>A problem a <see cref="YamlWalker"/> found, at its 1-based line and column.</summary>
public sealed record YamlProblem(int Line, int Column, string Message, bool IsWarning = false);

/// <summary>
/// The one hand-walker for the YAML files users write (registries.yaml, sync files, access rules, config.yaml):
/// YamlDotNet's node tree, walked so that every problem is collected with its line and column and one run reports
/// them all, instead of a deserializer's first exception. Each reader keeps its own words and rules; this holds
/// what they share — loading, null handling, maps with known keys and "did you mean", lists, scalars.
/// </summary>
public sealed class YamlWalker
{
    private readonly List<YamlProblem> _problems = [];

    /// <summary>Everything found so far, in the order found.</summary>
    public IReadOnlyList<YamlProblem> Problems => _problems;

    /// <summary>Whether any problem is an error (not a warning).</summary>
    public bool HasErrors => _problems.Exists(p => !p.IsWarning);

    /// <summary>
    /// The root nodes of every document in <paramref name="text"/>, or null when it is not YAML (the syntax error
    /// is recorded, prefixed "not valid YAML: "). An empty text has no documents.
    /// </summary>
    public IReadOnlyList<YamlNode>? Load(TextReader text)
    {
        ArgumentNullException.ThrowIfNull(text);
        YamlStream stream;
        try
        {
            stream = LoadStream(text);
        }
        catch (YamlException ex)
        {
            // YamlDotNet's own message is only "(Line: …): Exception during deserialization"; the cause is inside.
            var message = ex.InnerException is { } inner ? $"{ex.Message}: {inner.Message}" : ex.Message;
            Error(ex.Start, $"not valid YAML: {message}");
            return null;
        }

        return [.. stream.Documents.Select(d => d.RootNode)];
    }

    /// <summary>The root nodes of <paramref name="text"/>; a syntax error throws <see cref="YamlException"/> (line and column in its <c>Start</c>).</summary>
    public static IReadOnlyList<YamlNode> LoadDocuments(TextReader text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. LoadStream(text).Documents.Select(d => d.RootNode)];
    }

    /// <summary>
    /// Loads every document; every syntax error is a <see cref="YamlException"/>. YamlDotNet's scanner throws a bare
    /// <see cref="InvalidOperationException"/> on some broken input (an unclosed flow collection such as <c>a: [b</c>
    /// followed by another key), which would otherwise reach the user as "Operation is not valid due to the current
    /// state of the object" or crash the CLI; it is reported at the last place the parser understood.
    /// </summary>
    private static YamlStream LoadStream(TextReader text)
    {
        var parser = new Parser(text);
        var stream = new YamlStream();
        try
        {
            stream.Load(parser);
        }
        catch (InvalidOperationException ex)
        {
            var at = parser.Current?.End ?? Mark.Empty;
            throw new YamlException(at, at, "syntax error after this point (an unclosed [ … ] or { … } is the usual cause)", ex);
        }

        return stream;
    }

    public static int Line(YamlNode node) => (int)node.Start.Line;

    public static int Column(YamlNode node) => (int)node.Start.Column;

    /// <summary>
    /// A YAML null: an empty value, <c>~</c> or <c>null</c> written plainly (a quoted <c>"null"</c> is a string), as
    /// yaml.v2 and YAML 1.1 read it.
    /// </summary>
    public static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Value: null }
        || node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: "" or "~" or "null" or "Null" or "NULL" };

    public void Error(YamlNode node, string message) => Error(node.Start, message);

    public void Error(Mark mark, string message) => _problems.Add(new YamlProblem((int)mark.Line, (int)mark.Column, message));

    public void Warning(YamlNode node, string message) => _problems.Add(new YamlProblem(Line(node), Column(node), message, IsWarning: true));

    /// <summary>
    /// The key/value pairs of a map with their key nodes; a null node is an empty map. Anything else is reported with
    /// <paramref name="notAMap"/>, and keys that are not strings as "keys of <paramref name="where"/> must be strings".
    /// </summary>
    public IEnumerable<(string Key, YamlNode KeyNode, YamlNode Value)> Pairs(YamlNode node, string where, string notAMap)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (IsNull(node))
        {
            yield break;
        }

        if (node is not YamlMappingNode map)
        {
            Error(node, notAMap);
            yield break;
        }

        foreach (var (keyNode, value) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                Error(keyNode, $"keys of {where} must be strings");
                continue;
            }

            yield return (key, keyNode, value);
        }
    }

    /// <summary>
    /// The pairs of a map whose keys are in <paramref name="known"/>; each other key is reported with the message
    /// <paramref name="unknown"/> makes from it and the known key it most resembles (<see cref="Suggest"/>), if any: as an
    /// error, or as a warning where the file's own reader ignores unknown keys (K3s's registries.yaml).
    /// </summary>
    public IEnumerable<(string Key, YamlNode Value)> Entries(YamlNode node, string where, string notAMap, IReadOnlyCollection<string> known,
        Func<string, string?, string> unknown, bool unknownIsWarning = false)
    {
        ArgumentNullException.ThrowIfNull(known);
        ArgumentNullException.ThrowIfNull(unknown);
        foreach (var (key, keyNode, value) in Pairs(node, where, notAMap))
        {
            if (!known.Contains(key, StringComparer.Ordinal))
            {
                var message = unknown(key, Suggest(key, known));
                if (unknownIsWarning)
                {
                    Warning(keyNode, message);
                }
                else
                {
                    Error(keyNode, message);
                }

                continue;
            }

            yield return (key, value);
        }
    }

    /// <summary>
    /// The known key a misspelt one was probably meant to be: the same in another case, a typo away
    /// (<see cref="Spelling.Closest"/>: <c>endpoints</c>, <c>insecure_skip_verfy</c>, <c>paralel</c>), or a part
    /// of it (<c>ca</c> for <c>ca_file</c>); null when none is close.
    /// </summary>
    public static string? Suggest(string key, IEnumerable<string> known)
    {
        ArgumentNullException.ThrowIfNull(key);
        var candidates = known.ToList();
        return candidates.Find(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase))
            ?? Spelling.Closest(key, candidates)
            ?? (key.Length > 1 ? candidates.Find(k => k.Contains(key, StringComparison.Ordinal) || key.Contains(k, StringComparison.Ordinal)) : null);
    }

    /// <summary>The items of a list; a null node is an empty list, anything else is reported with <paramref name="notAList"/>.</summary>
    public IReadOnlyList<YamlNode> Items(YamlNode node, string notAList)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node is YamlSequenceNode sequence)
        {
            return [.. sequence.Children];
        }

        if (!IsNull(node))
        {
            Error(node, notAList);
        }

        return [];
    }

    /// <summary>A single value (a null is empty); a list or map is reported as "<paramref name="where"/> must be a single value, not a …".</summary>
    public string? Scalar(YamlNode node, string where)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node is YamlScalarNode scalar)
        {
            return IsNull(node) ? string.Empty : scalar.Value;
        }

        Error(node, $"{where} must be a single value, not a {(node is YamlSequenceNode ? "list" : "map")}");
        return null;
    }

    /// <summary>
    /// A flat map of names to a value or a list of values, as K3s's and Airlock's <c>config.yaml</c> are written
    /// (<c>node-label: [a=b, c=d]</c> is a flag given twice). Values of another shape are reported, and listed
    /// with no values (a lenient reader still sees the key).
    /// </summary>
    public IReadOnlyList<(string Key, int Line, IReadOnlyList<string> Values)> FlatSettings(YamlNode root, string where)
    {
        var settings = new List<(string, int, IReadOnlyList<string>)>();
        foreach (var (key, keyNode, value) in Pairs(root, where, $"the top level must be a map of names to values"))
        {
            switch (value)
            {
                case YamlScalarNode scalar:
                    settings.Add((key, Line(keyNode), [scalar.Value ?? string.Empty]));
                    break;
                case YamlSequenceNode sequence when sequence.Children.All(c => c is YamlScalarNode):
                    settings.Add((key, Line(keyNode), [.. sequence.Children.Select(c => ((YamlScalarNode)c).Value ?? string.Empty)]));
                    break;
                default:
                    Error(keyNode, $"value of \"{key}\" must be a scalar or a list of scalars");
                    settings.Add((key, Line(keyNode), []));
                    break;
            }
        }

        return settings;
    }
}
