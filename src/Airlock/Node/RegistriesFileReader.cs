using Airlock.Configuration;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Airlock.Node;

/// <summary>
/// Reads registries.yaml leniently, as K3s's yaml.v2 <c>Unmarshal</c> does (unknown keys are ignored, nulls are
/// empty), while noting every structural problem with its line. K3s refuses to start on a wrong shape (a yaml.v2
/// type error, e.g. a quoted <c>"true"</c> where a boolean belongs): errors here too. It ignores unknown keys
/// silently — which is how a misspelt <c>insecure_skip_verfy</c> or the guide's <c>auth.token</c> goes unnoticed —
/// so they are warnings: named, and the file still used. A relative TLS file path is an error: containerd would
/// look for it under <c>certs.d/&lt;host&gt;/</c>, not where the author meant.
/// </summary>
public static class RegistriesFileReader
{
    private static readonly string[] TopKeys = ["mirrors", "configs", "auths"];
    private static readonly string[] MirrorKeys = ["endpoint", "rewrite"];
    private static readonly string[] ConfigKeys = ["auth", "tls"];
    private static readonly string[] AuthKeys = ["username", "password", "auth", "identity_token"];
    private static readonly string[] TlsKeys = ["ca_file", "cert_file", "key_file", "insecure_skip_verify"];

    // yaml.v2 resolves these YAML 1.1 spellings to booleans.
    private static readonly HashSet<string> TrueWords = ["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"];
    private static readonly HashSet<string> FalseWords = ["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"];

    /// <summary>Reads the file; a missing file is an empty one when <paramref name="missingIsEmpty"/> (K3s runs without it).</summary>
    public static async Task<(RegistriesFile File, IReadOnlyList<RegistriesProblem> Problems)> ReadAsync(string path, bool missingIsEmpty, CancellationToken cancellationToken)
    {
        if (missingIsEmpty && !System.IO.File.Exists(path) && !Directory.Exists(path))
        {
            return (new RegistriesFile(path, [], []), []);
        }

        string text;
        try
        {
            text = await System.IO.File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (new RegistriesFile(path, [], []), [new RegistriesProblem(path, 0, ProblemSeverity.Fatal, $"cannot read the file: {ex.Message}")]);
        }

        return Parse(text, path);
    }

    public static (RegistriesFile File, IReadOnlyList<RegistriesProblem> Problems) Parse(string text, string source)
    {
        var reader = new Reader(source);
        using var input = new StringReader(text);
        // YamlDotNet also refuses duplicate keys, which K3s's yaml.v2 takes (the last one wins): reported rather than
        // guessed, since one of the two entries is a mistake either way.
        var documents = reader.Yaml.Load(input);
        if (documents is null || documents.Count == 0 || YamlWalker.IsNull(documents[0]))
        {
            return (new RegistriesFile(source, [], []), reader.Problems(fatal: documents is null));
        }

        if (documents.Count > 1)
        {
            reader.Yaml.Warning(documents[1], "only the first YAML document is read");
        }

        var file = reader.ReadTop(documents[0]);
        return (file, reader.Problems(fatal: false));
    }

    private static int Line(YamlNode node) => YamlWalker.Line(node);

    private static bool IsNull(YamlNode node) => YamlWalker.IsNull(node);

    private sealed class Reader(string source)
    {
        public YamlWalker Yaml { get; } = new();

        /// <summary>The walker's findings as registries.yaml problems; a file that is not YAML at all is fatal.</summary>
        public IReadOnlyList<RegistriesProblem> Problems(bool fatal) =>
            [.. Yaml.Problems.Select(p => new RegistriesProblem(source, p.Line,
                fatal ? ProblemSeverity.Fatal : p.IsWarning ? ProblemSeverity.Warning : ProblemSeverity.Error, p.Message))];

        public void Error(int line, string message) => Yaml.Error(new Mark(0, line, 1), message);

        public void Warning(YamlNode node, string message) => Yaml.Warning(node, message);

        public RegistriesFile ReadTop(YamlNode root)
        {
            var mirrors = new List<RegistryMirror>();
            var configs = new List<RegistryConfig>();
            foreach (var (key, value) in Entries(root, "the top level", TopKeys))
            {
                switch (key)
                {
                    case "mirrors":
                        foreach (var (host, hostNode, mirrorNode) in KeyedEntries(value, "mirrors"))
                        {
                            mirrors.RemoveAll(m => m.Key == host);
                            mirrors.Add(ReadMirror(host, hostNode, mirrorNode));
                        }

                        break;
                    case "configs":
                        foreach (var (host, hostNode, configNode) in KeyedEntries(value, "configs"))
                        {
                            configs.RemoveAll(c => c.Key == host);
                            configs.Add(ReadConfig(host, hostNode, configNode));
                        }

                        break;
                    case "auths":
                        Warning(value, "\"auths\" is deprecated and not used; put credentials under configs.<registry>.auth");
                        break;
                }
            }

            return new RegistriesFile(source, mirrors, configs);
        }

        private RegistryMirror ReadMirror(string host, YamlNode hostNode, YamlNode node)
        {
            var endpoints = new List<MirrorEndpoint>();
            var rewrites = new List<RewriteRule>();
            foreach (var (key, value) in Entries(node, $"mirrors.\"{host}\"", MirrorKeys))
            {
                if (key == "endpoint")
                {
                    endpoints.AddRange(Strings(value, $"mirrors.\"{host}\".endpoint").Select(s => new MirrorEndpoint(s.Value, s.Line)));
                }
                else
                {
                    foreach (var (pattern, patternNode, replacementNode) in KeyedEntries(value, $"mirrors.\"{host}\".rewrite"))
                    {
                        var replacement = Scalar(replacementNode, $"rewrite \"{pattern}\"") ?? string.Empty;
                        rewrites.RemoveAll(r => r.Pattern == pattern);
                        rewrites.Add(new RewriteRule(pattern, replacement, Line(patternNode)));
                    }
                }
            }

            return new RegistryMirror(host, Line(hostNode), endpoints, rewrites);
        }

        private RegistryConfig ReadConfig(string host, YamlNode hostNode, YamlNode node)
        {
            RegistryAuth? auth = null;
            RegistryTls? tls = null;
            foreach (var (key, value) in Entries(node, $"configs.\"{host}\"", ConfigKeys))
            {
                if (IsNull(value))
                {
                    continue;
                }

                if (key == "auth")
                {
                    var fields = Fields(value, $"configs.\"{host}\".auth", AuthKeys);
                    auth = fields is null ? null : new RegistryAuth(Line(value), Text(fields, "username"), Text(fields, "password"), Text(fields, "auth"), Text(fields, "identity_token"));
                }
                else
                {
                    var fields = Fields(value, $"configs.\"{host}\".tls", TlsKeys);
                    tls = fields is null
                        ? null
                        : new RegistryTls(Line(value), File(fields, "ca_file", host), File(fields, "cert_file", host), File(fields, "key_file", host),
                            Bool(fields, "insecure_skip_verify"));
                }
            }

            return new RegistryConfig(host, Line(hostNode), auth, tls);
        }

        private Dictionary<string, Field>? Fields(YamlNode node, string where, string[] known)
        {
            if (node is not YamlMappingNode)
            {
                Yaml.Error(node, $"{where} must be a map of {string.Join(", ", known)}");
                return null;
            }

            var fields = new Dictionary<string, Field>(StringComparer.Ordinal);
            foreach (var (key, value) in Entries(node, where, known))
            {
                var quoted = value is YamlScalarNode { Style: not (ScalarStyle.Plain or ScalarStyle.Any) };
                fields[key] = new Field(IsNull(value) ? null : Scalar(value, $"{where}.{key}"), Line(value), quoted);
            }

            return fields;
        }

        private static string? Text(Dictionary<string, Field> fields, string key) =>
            fields.TryGetValue(key, out var field) ? field.Value : null;

        private FileSetting? File(Dictionary<string, Field> fields, string key, string host)
        {
            if (!fields.TryGetValue(key, out var field) || string.IsNullOrEmpty(field.Value))
            {
                return null;
            }

            // containerd's hosts.toml resolves a relative ca/client path against the host's own directory (makeAbsPath),
            // which the renderer owns and rewrites: such a file would be read from nowhere the author put it.
            if (!Path.IsPathRooted(field.Value))
            {
                Error(field.Line, $"{key} \"{field.Value}\" of \"{host}\" is a relative path: containerd resolves it against the certs.d/<registry>/ directory "
                    + "of the hosts.toml it is written into (one Airlock renders and removes), not against registries.yaml or the current directory; give an absolute path");
            }

            return new FileSetting(field.Value, field.Line);
        }

        private bool Bool(Dictionary<string, Field> fields, string key)
        {
            if (!fields.TryGetValue(key, out var field) || field.Value is null)
            {
                return false;
            }

            // yaml.v2 reads a quoted scalar as a string, and a string does not unmarshal into a bool: K3s refuses the file.
            if (field.Quoted)
            {
                Error(field.Line, $"{key} must be a YAML boolean, not the quoted string \"{field.Value}\" (K3s refuses the file: cannot unmarshal !!str "
                    + $"into bool); write {(TrueWords.Contains(field.Value) ? "true" : FalseWords.Contains(field.Value) ? "false" : "true or false")} without quotes");
                return false;
            }

            if (TrueWords.Contains(field.Value))
            {
                return true;
            }

            if (!FalseWords.Contains(field.Value))
            {
                Error(field.Line, $"{key} must be true or false, not \"{field.Value}\"");
            }

            return false;
        }

        /// <summary>Key/value pairs of a map, reporting unknown keys; a null node is an empty map.</summary>
        private IEnumerable<(string Key, YamlNode Value)> Entries(YamlNode node, string where, string[] known) =>
            // K3s's non-strict yaml.v2 ignores it and so does Airlock; named, so a typo does not go unnoticed.
            Yaml.Entries(node, where, $"{where} must be a map", known, (key, hint) =>
                $"unknown key \"{key}\" in {where} is ignored, as K3s ignores it{(hint is null ? string.Empty : $"; did you mean \"{hint}\"?")}; known keys: {string.Join(", ", known)}",
                unknownIsWarning: true);

        private IEnumerable<(string Key, YamlNode KeyNode, YamlNode Value)> KeyedEntries(YamlNode node, string where) =>
            Yaml.Pairs(node, where, $"{where} must be a map");

        private IEnumerable<(string Value, int Line)> Strings(YamlNode node, string where)
        {
            foreach (var item in Yaml.Items(node, $"{where} must be a list of URLs (K3s refuses to start otherwise), e.g. \"- https://registry.example.com\""))
            {
                if (Scalar(item, where) is { } value)
                {
                    yield return (value, Line(item));
                }
            }
        }

        private string? Scalar(YamlNode node, string where) => Yaml.Scalar(node, where);

        private readonly record struct Field(string? Value, int Line, bool Quoted);
    }
}
