using System.Globalization;
using System.Text.RegularExpressions;
using Airlock.Configuration;
using Airlock.GoCompat;
using Airlock.Oci;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Airlock.Bundles.Sync;

/// <summary>
/// Reads regsync's configuration format (version 1) with the field names regsync uses. Every problem is
/// collected with its line and column so one run shows them all. Fields regsync has that a sync here does
/// not act on are accepted with a warning; unknown fields are errors, since a typo would otherwise silently
/// change what is mirrored.
/// </summary>
public sealed class SyncConfigReader
{
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(1);

    private static readonly string[] IgnoredCredKeys =
        ["repoAuth", "token", "scheme", "regcert", "clientCert", "clientKey", "pathPrefix", "mirrors", "priority", "api", "apiOpts",
         "blobChunk", "blobMax", "reqPerSec", "reqConcurrent", "credHelper", "credExpire"];

    private static readonly string[] IgnoredDefaultsKeys =
        ["mediaTypes", "backup", "schedule", "skipDockerConfig", "hooks", "referrers", "referrerFilters", "referrerSource", "referrerTarget",
         "digestTags", "fastCopy", "forceRecursive", "includeExternal", "userAgent", "cacheCount", "cacheTime", "platform", "platforms"];

    private static readonly string[] IgnoredSyncKeys =
        ["interval", "ratelimit", "mediaTypes", "backup", "schedule", "hooks", "referrers", "referrerFilters", "referrerSource",
         "referrerTarget", "digestTags", "fastCopy", "forceRecursive", "includeExternal"];

    private readonly Func<string, string?> _environment;
    private readonly Func<string, string> _readFile;
    private readonly YamlWalker _yaml = new();

    private SyncConfigReader(Func<string, string?> environment, Func<string, string> readFile)
    {
        _environment = environment;
        _readFile = readFile;
    }

    /// <summary>
    /// Parses <paramref name="text"/> (named <paramref name="file"/> in messages). <paramref name="environment"/>
    /// answers <c>{{ env }}</c> and <paramref name="readFile"/> <c>{{ file }}</c>, so callers (and tests) decide
    /// where values come from. Returns the config and the warnings; throws <see cref="SyncConfigException"/>
    /// listing every error.
    /// </summary>
    public static (SyncConfig Config, IReadOnlyList<SyncConfigProblem> Warnings) Parse(string text, string file,
        Func<string, string?> environment, Func<string, string> readFile)
    {
        ArgumentNullException.ThrowIfNull(text);
        var reader = new SyncConfigReader(environment, readFile);
        var config = reader.Read(text);
        var problems = reader._yaml.Problems.Select(p => new SyncConfigProblem(file, p.Line, p.Column, p.Message, p.IsWarning)).ToList();
        var errors = problems.Where(p => !p.IsWarning).ToList();
        if (errors.Count > 0 || config is null)
        {
            throw new SyncConfigException(errors);
        }

        return (config, problems.Where(p => p.IsWarning).ToList());
    }

    private SyncConfig? Read(string text)
    {
        var documents = _yaml.Load(new StringReader(text));
        if (documents is null)
        {
            return null;
        }

        if (documents.Count == 0 || documents[0] is not YamlMappingNode root)
        {
            _yaml.Error(new Mark(0, 1, 1), "expected a mapping with version, creds, defaults and sync");
            return null;
        }

        var config = new SyncConfig();
        var sawVersion = false;
        foreach (var (key, value) in Entries(root, "version", "creds", "defaults", "sync"))
        {
            switch (key)
            {
                case "version":
                    sawVersion = true;
                    if (Int(value) is { } version && version != 1)
                    {
                        Error(value, $"unsupported version {version}: only version 1 is supported");
                    }

                    break;
                case "creds":
                    config = config with { Creds = Sequence(value).Select(ReadCred).OfType<SyncCredential>().ToList() };
                    break;
                case "defaults":
                    config = ReadDefaults(value, config);
                    break;
                case "sync":
                    config = config with { Sync = Sequence(value).Select(ReadEntry).OfType<SyncEntry>().ToList() };
                    break;
            }
        }

        if (!sawVersion)
        {
            Warn(root, "no version given; reading it as version 1");
        }

        if (config.Sync.Count == 0 && !_yaml.HasErrors)
        {
            Error(root, "no sync entries");
        }

        return config;
    }

    private SyncCredential? ReadCred(YamlNode node)
    {
        string? registry = null, user = null, pass = null;
        var tls = SyncTls.Enabled;
        foreach (var (key, value) in Entries(node, ["registry", "hostname", "user", "pass", "tls", .. IgnoredCredKeys]))
        {
            switch (key)
            {
                case "registry" or "hostname":
                    registry = Expand(value);
                    break;
                case "user":
                    user = Expand(value);
                    break;
                case "pass":
                    pass = Expand(value);
                    break;
                case "tls":
                    switch (Scalar(value))
                    {
                        case "enabled": tls = SyncTls.Enabled; break;
                        case "insecure": tls = SyncTls.Insecure; break;
                        case "disabled": tls = SyncTls.Disabled; break;
                        case { } other: Error(value, $"tls \"{other}\" is not one of enabled, insecure, disabled"); break;
                    }

                    break;
                default:
                    Warn(value, $"creds field \"{key}\" is not supported and is ignored");
                    break;
            }
        }

        if (string.IsNullOrEmpty(registry))
        {
            Error(node, "creds entry has no registry");
            return null;
        }

        return new SyncCredential(registry, user, pass, tls);
    }

    private SyncConfig ReadDefaults(YamlNode node, SyncConfig config)
    {
        foreach (var (key, value) in Entries(node, ["parallel", "interval", "ratelimit", .. IgnoredDefaultsKeys]))
        {
            switch (key)
            {
                case "parallel":
                    if (Int(value) is { } parallel)
                    {
                        config = config with { Parallel = Math.Max(1, parallel) };
                    }

                    break;
                case "interval":
                    if (Scalar(value) is { } text)
                    {
                        if (GoDuration.TryParse(text, out var interval) && interval > TimeSpan.Zero)
                        {
                            config = config with { Interval = interval };
                        }
                        else
                        {
                            Error(value, $"interval \"{text}\" is not a positive duration such as 60m or 1h30m");
                        }
                    }

                    break;
                case "ratelimit":
                    ReadRateLimit(value);
                    break;
                default:
                    Warn(value, $"defaults field \"{key}\" is not supported and is ignored");
                    break;
            }
        }

        return config;
    }

    private void ReadRateLimit(YamlNode node)
    {
        foreach (var (key, value) in Entries(node, "min", "retry"))
        {
            if (key == "min" && Int(value) is { } min && min < 0)
            {
                Error(value, "ratelimit min must not be negative");
            }
            else if (key == "retry" && Scalar(value) is { } retry && !GoDuration.TryParse(retry, out _))
            {
                Error(value, $"ratelimit retry \"{retry}\" is not a duration such as 5m");
            }
        }

        // regsync pauses when Docker Hub's remaining-quota header drops below min; nothing here reads that header.
        Warn(node, "ratelimit is accepted but not enforced: the registry's remaining-quota headers are not tracked");
    }

    private SyncEntry? ReadEntry(YamlNode node)
    {
        string? source = null, target = null;
        SyncType? type = null;
        YamlNode? sourceNode = null, targetNode = null;
        var tags = TagFilter.All;
        List<Platform>? platforms = null;
        foreach (var (key, value) in Entries(node, ["source", "target", "type", "tags", "repos", "platform", "platforms", .. IgnoredSyncKeys]))
        {
            switch (key)
            {
                case "source":
                    (source, sourceNode) = (Expand(value), value);
                    break;
                case "target":
                    (target, targetNode) = (Expand(value), value);
                    break;
                case "type":
                    type = Scalar(value) switch
                    {
                        "image" => SyncType.Image,
                        "repository" => SyncType.Repository,
                        "registry" => SyncType.Registry,
                        var other => Fail(value, $"type \"{other}\" is not one of image, repository, registry"),
                    };
                    break;
                case "tags":
                    tags = ReadFilter(value);
                    break;
                case "repos":
                    // Only meaningful for type registry, where regsync filters the catalog with it too.
                    Warn(value, "repos filtering is not supported and is ignored");
                    break;
                case "platform":
                    if (Scalar(value) is { } one)
                    {
                        platforms = [.. platforms ?? [], .. ParsePlatforms(value, [one])];
                    }

                    break;
                case "platforms":
                    platforms = [.. platforms ?? [], .. ParsePlatforms(value, Sequence(value).Select(Scalar).OfType<string>())];
                    break;
                default:
                    Warn(value, $"sync field \"{key}\" is not supported and is ignored");
                    break;
            }
        }

        if (type is null && !HasKey(node, "type"))
        {
            Error(node, "sync entry has no type (image, repository or registry)");
        }

        // A value that failed to expand has been reported already.
        if (source is null && !HasKey(node, "source"))
        {
            Error(node, "sync entry has no source");
        }

        if (target is null && !HasKey(node, "target"))
        {
            Error(node, "sync entry has no target");
        }

        if (type is null || source is null || target is null)
        {
            return null;
        }

        var valid = CheckName(type.Value, source, sourceNode!, "source") & CheckName(type.Value, target, targetNode!, "target");
        return valid
            ? new SyncEntry { Type = type.Value, Source = source, Target = target, Tags = tags, Platforms = platforms, Line = Line(node) }
            : null;
    }

    private bool CheckName(SyncType type, string value, YamlNode node, string field)
    {
        string? error = null;
        switch (type)
        {
            case SyncType.Image:
                if (!ImageReference.TryParse(value, out _, out var invalid))
                {
                    error = invalid;
                }

                break;
            case SyncType.Repository:
                if (!ImageReference.TryParse(value, out var repository, out var invalidRepository))
                {
                    error = invalidRepository;
                }
                else if (repository.Tag is not null || repository.Digest is not null)
                {
                    error = "a repository entry names a repository, without tag or digest";
                }

                break;
            case SyncType.Registry:
                if (value.Length == 0 || value.Contains('/', StringComparison.Ordinal) || !ImageReference.TryParse($"{value}/probe", out _))
                {
                    error = "a registry entry names a registry host[:port], without a repository";
                }

                break;
        }

        if (error is not null)
        {
            Error(node, $"{field} \"{value}\" is not valid: {error}");
            return false;
        }

        return true;
    }

    private TagFilter ReadFilter(YamlNode node)
    {
        var allow = new List<Regex>();
        var deny = new List<Regex>();
        foreach (var (key, value) in Entries(node, "allow", "deny", "semverRange"))
        {
            if (key == "semverRange")
            {
                Warn(value, "semverRange is not supported and is ignored");
                continue;
            }

            foreach (var item in Sequence(value))
            {
                if (Scalar(item) is not { } pattern)
                {
                    continue;
                }

                try
                {
                    (key == "allow" ? allow : deny).Add(new Regex($@"^(?:{pattern})\z", RegexOptions.CultureInvariant, RegexTimeout));
                }
                catch (ArgumentException e)
                {
                    Error(item, $"{key} pattern \"{pattern}\" is not a valid regular expression: {e.Message}");
                }
            }
        }

        return new TagFilter(allow, deny);
    }

    private IEnumerable<Platform> ParsePlatforms(YamlNode node, IEnumerable<string> values)
    {
        var platforms = new List<Platform>();
        foreach (var value in values)
        {
            try
            {
                platforms.Add(Platform.Parse(value));
            }
            catch (FormatException e)
            {
                Error(node, $"platform \"{value}\": {e.Message}");
            }
        }

        return platforms;
    }

    private static bool HasKey(YamlNode node, string key) =>
        node is YamlMappingNode mapping && mapping.Children.Keys.Any(k => k is YamlScalarNode { Value: var v } && v == key);

    private SyncType? Fail(YamlNode node, string message)
    {
        Error(node, message);
        return null;
    }

    private IEnumerable<(string Key, YamlNode Value)> Entries(YamlNode node, params string[] known) =>
        _yaml.Entries(node, "the mapping", $"expected a mapping with {string.Join(", ", known.Take(5))}", known,
            (key, similar) => $"unknown field \"{key}\"{(similar is null ? "" : $" (did you mean \"{similar}\"?)")}");

    private IReadOnlyList<YamlNode> Sequence(YamlNode node) => _yaml.Items(node, "expected a list");

    private string? Scalar(YamlNode node)
    {
        if (node is YamlScalarNode scalar)
        {
            return scalar.Value;
        }

        Error(node, "expected a single value");
        return null;
    }

    private int? Int(YamlNode node)
    {
        if (Scalar(node) is not { } text)
        {
            return null;
        }

        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }

        Error(node, $"\"{text}\" is not a whole number");
        return null;
    }

    private string? Expand(YamlNode node)
    {
        if (Scalar(node) is not { } text)
        {
            return null;
        }

        if (SyncTemplate.TryExpand(text, _environment, _readFile, out var expanded, out var error))
        {
            return expanded;
        }

        // Columns point into the value where they can: single-line values, past an opening quote.
        var scalar = (YamlScalarNode)node;
        var quoted = scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted ? 1 : 0;
        var column = text.Contains('\n', StringComparison.Ordinal) ? (int)node.Start.Column : (int)node.Start.Column + quoted + error.Offset;
        _yaml.Error(new Mark(0, Line(node), column), $"template: {error.Message}");
        return null;
    }

    private static int Line(YamlNode node) => (int)node.Start.Line;

    private void Error(YamlNode node, string message) => Error(node.Start, message);

    private void Error(Mark mark, string message) => _yaml.Error(mark, message);

    private void Warn(YamlNode node, string message) => _yaml.Warning(node, message);
}
