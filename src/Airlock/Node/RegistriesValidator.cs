using System.Text.RegularExpressions;

namespace Airlock.Node;

/// <summary>
/// Finds everything wrong with a registries.yaml at once, each with its line: what K3s would skip silently
/// (unparseable endpoints, unknown schemes), what containerd would fail on later (unreadable CA or client
/// files, half a client pair), and K3s quirks that make a setting
/// ineffective.
/// </summary>
public static class RegistriesValidator
{
    // RE2 (Go regexp) has no lookaround, backreferences, atomic groups or possessive quantifiers.
    private static readonly Regex Re2Unsupported = new(@"\(\?(?:=|!|<=|<!|>)|\\[1-9]|\\k<|[*+?}]\+", RegexOptions.CultureInvariant);

    /// <summary>Structural problems from reading plus semantic ones, ordered by line.</summary>
    public static IReadOnlyList<RegistriesProblem> Validate(RegistriesFile registries, IEnumerable<RegistriesProblem> readProblems)
    {
        ArgumentNullException.ThrowIfNull(registries);
        var problems = new List<RegistriesProblem>(readProblems);
        void Error(int line, string message) => problems.Add(new RegistriesProblem(registries.Source, line, ProblemSeverity.Error, message));
        void Warning(int line, string message) => problems.Add(new RegistriesProblem(registries.Source, line, ProblemSeverity.Warning, message));

        foreach (var mirror in registries.Mirrors)
        {
            CheckKey(mirror.Key, mirror.Line, "mirror", Error);
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var endpoint in mirror.Endpoints)
            {
                if (!EndpointAddress.TryNormalize(endpoint.Address, out var address, out var error))
                {
                    Error(endpoint.Line, $"endpoint \"{endpoint.Address}\" is not a valid URL ({error}); K3s skips it");
                    continue;
                }

                if (address!.Scheme is not ("http" or "https"))
                {
                    Error(endpoint.Line, $"endpoint \"{endpoint.Address}\" has an unknown scheme \"{address.Scheme}\"; use https:// or http://");
                }
                else if (address.Host.Length == 0)
                {
                    Error(endpoint.Line, $"endpoint \"{endpoint.Address}\" has no host");
                }

                if (seen.TryGetValue(address.Url, out var firstLine))
                {
                    Warning(endpoint.Line, $"endpoint \"{endpoint.Address}\" is the same as line {firstLine} ({address.Url}); it is used once");
                }
                else
                {
                    seen[address.Url] = endpoint.Line;
                }

                if (address.Url.Contains('?', StringComparison.Ordinal))
                {
                    Warning(endpoint.Line, $"endpoint \"{endpoint.Address}\" has a query string; containerd adds ?ns=<registry> itself");
                }
            }

            if (mirror.Rewrites.Count > 0 && mirror.Endpoints.Count == 0)
            {
                Warning(mirror.Line, $"mirror \"{mirror.Key}\" has rewrites but no endpoints; rewrites apply only to mirror endpoints");
            }

            foreach (var rewrite in mirror.Rewrites)
            {
                CheckRewrite(rewrite, Error);
            }
        }

        foreach (var config in registries.Configs)
        {
            CheckKey(config.Key, config.Line, "configs", Error);
            if (config.Tls is { } tls)
            {
                CheckReadable(tls.CaFile, "ca_file", Error);
                CheckReadable(tls.CertFile, "cert_file", Error);
                CheckReadable(tls.KeyFile, "key_file", Error);
                if (tls.CertFile is not null && tls.KeyFile is null)
                {
                    Error(tls.CertFile.Line, $"configs.\"{config.Key}\".tls has cert_file but no key_file; a client certificate needs both");
                }
                else if (tls.KeyFile is not null && tls.CertFile is null)
                {
                    Error(tls.KeyFile.Line, $"configs.\"{config.Key}\".tls has key_file but no cert_file; a client certificate needs both");
                }
            }
        }

        if (registries.FindConfig(RegistriesFile.Wildcard) is { } wildcardConfig && registries.FindMirror(RegistriesFile.Wildcard) is not null
            && (wildcardConfig.Tls is not null || wildcardConfig.Auth is not null))
        {
            Warning(wildcardConfig.Line, "configs.\"*\" is ignored by K3s for the \"*\" mirror's hosts.toml when \"*\" is also a mirror; give each mirror endpoint's host its own configs entry");
        }

        return problems.OrderBy(p => p.Line).ThenBy(p => p.Severity).ToList();
    }

    private static void CheckKey(string key, int line, string section, Action<int, string> error)
    {
        if (key == RegistriesFile.Wildcard)
        {
            return;
        }

        if (key.Contains("://", StringComparison.Ordinal) || key.IndexOfAny(['/', '\\']) >= 0 || key is "." or "..")
        {
            error(line, $"{section} key \"{key}\" must be a registry host[:port] as in image names, without scheme or path");
        }
        else if (!EndpointAddress.TryNormalize(key, out var address, out var message))
        {
            error(line, $"{section} key \"{key}\" is not a valid registry host ({message}); K3s skips the entry");
        }
        else if (address!.Host.Length == 0)
        {
            error(line, $"{section} key is empty");
        }
    }

    private static void CheckRewrite(RewriteRule rewrite, Action<int, string> error)
    {
        try
        {
            _ = new Regex(rewrite.Pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            if (Re2Unsupported.IsMatch(rewrite.Pattern))
            {
                error(rewrite.Line, $"rewrite \"{rewrite.Pattern}\" uses lookaround, backreferences or possessive quantifiers, which Go's regexp (RE2) does not support");
            }
        }
        catch (ArgumentException ex)
        {
            error(rewrite.Line, $"rewrite \"{rewrite.Pattern}\" is not a valid regular expression: {ex.Message}");
        }

        // A pattern is a TOML key in hosts.toml; go-toml v1 (containerd 1.6, 1.7) reads a key with " only as a literal
        // string, which cannot hold ' or control characters, and refusing the file it falls back to the registry itself.
        if (rewrite.Pattern.Contains('"', StringComparison.Ordinal) && rewrite.Pattern.Any(c => c == '\'' || char.IsControl(c) && c != '\t'))
        {
            error(rewrite.Line, $"rewrite \"{rewrite.Pattern}\" has a \" together with a ' or a control character, which containerd 1.6 and 1.7 "
                + "cannot read as a hosts.toml key; write the quote as \\x22 in the pattern (the same regular expression)");
        }
    }

    private static void CheckReadable(FileSetting? file, string name, Action<int, string> error)
    {
        // A relative path is already an error of its own (the reader's): where containerd looks is not here.
        if (file is null || !Path.IsPathRooted(file.Path))
        {
            return;
        }

        if (Directory.Exists(file.Path))
        {
            error(file.Line, $"{name} \"{file.Path}\" is a directory, not a file");
            return;
        }

        try
        {
            using var stream = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            error(file.Line, $"{name} \"{file.Path}\" cannot be read: {ex.Message}");
        }
    }
}
