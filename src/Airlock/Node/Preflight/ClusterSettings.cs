using Airlock.Configuration;
using YamlDotNet.RepresentationModel;

namespace Airlock.Node.Preflight;

/// <summary>
/// The K3s-style cluster keys of <c>config.yaml</c> that <c>airlock check</c> validates (same names as
/// K3s flags, so a K3s config file can be checked as it is). Each value keeps the line it came from.
/// </summary>
public sealed class ClusterSettings
{
    public static readonly ClusterSettings Empty = new(string.Empty, new Dictionary<string, Setting>(StringComparer.Ordinal));

    private readonly Dictionary<string, Setting> _values;

    private ClusterSettings(string source, Dictionary<string, Setting> values)
    {
        Source = source;
        _values = values;
    }

    public string Source { get; }

    public Setting? this[string key] => _values.GetValueOrDefault(key);

    /// <summary>Every key of the file, in no particular order.</summary>
    public IEnumerable<Setting> All => _values.Values;

    /// <summary>Reads <paramref name="path"/>; a missing file yields empty settings.</summary>
    public static ClusterSettings Load(string path)
    {
        if (!File.Exists(path))
        {
            return Empty;
        }

        IReadOnlyList<YamlNode> documents;
        using (var reader = new StreamReader(path))
        {
            try
            {
                documents = YamlWalker.LoadDocuments(reader);
            }
            catch (YamlDotNet.Core.YamlException ex)
            {
                throw new InvalidDataException($"{path}:{ex.Start.Line}: {ex.Message}", ex);
            }
        }

        var values = new Dictionary<string, Setting>(StringComparer.Ordinal);
        if (documents.Count > 0 && documents[0] is YamlMappingNode map)
        {
            // Lenient, as K3s's own reading: a value of the wrong shape is a key with no values here, for the checks to judge.
            foreach (var (key, line, items) in new YamlWalker().FlatSettings(map, path))
            {
                values[key] = new Setting(key, items, $"{path}:{line}");
            }
        }

        return new ClusterSettings(path, values);
    }

    /// <summary>Settings given directly (tests, or flags).</summary>
    public static ClusterSettings From(string source, IReadOnlyDictionary<string, string[]> values) =>
        new(source, values.ToDictionary(kv => kv.Key, kv => new Setting(kv.Key, kv.Value, source), StringComparer.Ordinal));
}

/// <summary>One key's values (a K3s flag may be given several times or as a comma list) and where it was set.</summary>
public sealed record Setting(string Key, IReadOnlyList<string> Values, string Location)
{
    public string Scalar => Values.Count > 0 ? Values[^1] : string.Empty;

    /// <summary>All values, comma lists split, as K3s does for CIDR flags.</summary>
    public IEnumerable<string> Items => Values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
