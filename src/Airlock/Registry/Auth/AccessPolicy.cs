using Airlock.Configuration;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Airlock.Registry.Auth;

/// <summary>
/// Who may do what to which repositories; shared by Basic and token authentication.
/// <para>
/// Without an access file every authenticated user may do everything. With <c>--anonymous-pull</c>,
/// requests without credentials may pull (and list the catalog). An access file (<c>--access FILE</c>)
/// replaces the first rule:
/// </para>
/// <code>
/// # who may do what; the first rule matching both the user and the repository wins
/// access:
///   - users: [alice, bob]        # user names from the htpasswd file; "*" = any authenticated user;
///                                # "anonymous" = requests without credentials
///     repositories: ["team-a/*"] # glob patterns: * = any characters (also /), ? = one character
///     actions: [pull, push]      # pull, push, delete, or "*" for all three; [] denies
///   - users: ["*"]
///     repositories: ["*"]
///     actions: [pull]
/// </code>
/// <para>
/// A repository no rule matches is denied. Listing the catalog (<c>/v2/_catalog</c>) is allowed to a
/// user whose first matching rule for every repository (pattern <c>"*"</c>) includes pull.
/// <c>--anonymous-pull</c> adds an implicit last rule <c>{users: [anonymous], repositories: ["*"],
/// actions: [pull]}</c>, so a file can still deny anonymous access to some repositories before it.
/// Keys are checked: unknown keys, unknown actions, empty or malformed patterns are all reported at once
/// with file and line.
/// </para>
/// </summary>
public sealed class AccessPolicy
{
    /// <summary>The name that, in an access file's <c>users</c>, stands for requests without credentials.</summary>
    public const string AnonymousUser = "anonymous";

    private static readonly string[] AllActions = ["pull", "push", "delete"];
    private static readonly HashSet<string> KnownActions = ["pull", "push", "delete", "*"];

    private readonly IReadOnlyList<AccessRule> _rules;
    private Func<string, bool>? _authenticatedOnly;

    private AccessPolicy(IReadOnlyList<AccessRule> rules, bool anonymousPull)
    {
        if (anonymousPull)
        {
            rules = [.. rules, new AccessRule([AnonymousUser], ["*"], ["pull"], 0)];
        }

        _rules = rules;
        AllowsAnonymous = rules.Any(r => r.Users.Contains(AnonymousUser) && r.Actions.Count > 0);
    }

    /// <summary>True when some request without credentials can be allowed, so the <c>/v2/</c> base check
    /// must not demand credentials.</summary>
    public bool AllowsAnonymous { get; }

    /// <summary>No access file: authenticated users may do everything; anonymous users may pull when
    /// <paramref name="anonymousPull"/>.</summary>
    public static AccessPolicy Create(bool anonymousPull) =>
        new([new AccessRule(["*"], ["*"], ["*"], 0)], anonymousPull);

    /// <summary>Reads an access file; throws <see cref="AuthConfigurationException"/> listing every
    /// problem with file and line.</summary>
    public static AccessPolicy Load(string path, bool anonymousPull)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AuthConfigurationException($"{path}: cannot read access file: {e.Message}", e);
        }

        return Parse(text, path, anonymousPull);
    }

    /// <summary>Parses access-file YAML; <paramref name="source"/> names it in error messages.</summary>
    public static AccessPolicy Parse(string yaml, string source, bool anonymousPull) =>
        new(AccessFileReader.Read(yaml, source), anonymousPull);

    /// <summary>
    /// The actions of <paramref name="request"/> that <paramref name="user"/> (null = anonymous) may
    /// perform: the intersection with what the policy allows, possibly empty. <c>*</c> in a request
    /// expands to pull, push and delete for repositories.
    /// </summary>
    public IReadOnlyList<string> Grant(string? user, AccessRequest request)
    {
        if (user is null && request.Type == "repository" && _authenticatedOnly?.Invoke(request.Name) == true)
        {
            return [];
        }

        if (request.Type == "registry" && request.Name == "catalog")
        {
            return MayListCatalog(user) ? request.Actions : [];
        }

        if (request.Type != "repository")
        {
            return [];
        }

        var rule = FirstRule(user, request.Name);
        if (rule is null)
        {
            return [];
        }

        var granted = new List<string>();
        foreach (var action in request.Actions)
        {
            if (action == "*")
            {
                // Only a rule that allows everything grants the wildcard itself.
                if (AllActions.All(rule.Allows))
                {
                    granted.Add(action);
                }
            }
            else if (rule.Allows(action) && !granted.Contains(action))
            {
                granted.Add(action);
            }
        }

        return granted;
    }

    /// <summary>
    /// Repositories no anonymous request may touch, whatever the rules and <c>--anonymous-pull</c> say (the
    /// cache of a private pull-through upstream). Set once, while the registry is assembled.
    /// </summary>
    internal AccessPolicy RequireAuthenticationFor(Func<string, bool>? repositories)
    {
        _authenticatedOnly = repositories;
        return this;
    }

    private bool MayListCatalog(string? user)
    {
        var rule = _rules.FirstOrDefault(r => r.MatchesUser(user) && r.Repositories.Contains("*"));
        return rule is not null && rule.Allows("pull");
    }

    private AccessRule? FirstRule(string? user, string repository) =>
        _rules.FirstOrDefault(r => r.MatchesUser(user) && r.Repositories.Any(p => Glob.Matches(p, repository)));

    internal sealed record AccessRule(IReadOnlyList<string> Users, IReadOnlyList<string> Repositories, IReadOnlyList<string> Actions, int Line)
    {
        public bool MatchesUser(string? user) => user is null
            ? Users.Contains(AnonymousUser)
            : Users.Contains(user) || Users.Contains("*");

        public bool Allows(string action) => Actions.Contains("*") || Actions.Contains(action);
    }

    private static class Glob
    {
        /// <summary><c>*</c> matches any run of characters (slashes included), <c>?</c> one character.</summary>
        public static bool Matches(string pattern, string text)
        {
            int p = 0, t = 0, star = -1, resume = 0;
            while (t < text.Length)
            {
                if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]))
                {
                    p++;
                    t++;
                }
                else if (p < pattern.Length && pattern[p] == '*')
                {
                    star = p++;
                    resume = t;
                }
                else if (star >= 0)
                {
                    p = star + 1;
                    t = ++resume;
                }
                else
                {
                    return false;
                }
            }

            while (p < pattern.Length && pattern[p] == '*')
            {
                p++;
            }

            return p == pattern.Length;
        }
    }

    private static class AccessFileReader
    {
        private static readonly HashSet<string> RuleKeys = ["users", "repositories", "actions"];

        public static IReadOnlyList<AccessRule> Read(string yaml, string source)
        {
            var walker = new YamlWalker();
            var documents = walker.Load(new StringReader(yaml));
            if (documents is null)
            {
                throw new AuthConfigurationException([.. walker.Problems.Select(p => $"{source}:{p.Line}: {p.Message}")]);
            }

            if (documents.Count == 0 || documents[0] is not YamlMappingNode root)
            {
                throw new AuthConfigurationException([$"{source}:1: expected a mapping with an \"access:\" list of rules"]);
            }

            YamlSequenceNode? list = null;
            foreach (var (key, value) in walker.Entries(root, "the access file", "", ["access"], (key, _) => $"unknown key \"{key}\" (expected \"access\")"))
            {
                if (value is YamlSequenceNode sequence)
                {
                    list = sequence;
                }
                else
                {
                    walker.Error(value, "\"access\" must be a list of rules");
                }
            }

            if (list is null && walker.Problems.Count == 0)
            {
                walker.Error(root, "missing \"access:\" list of rules");
            }

            var rules = new List<AccessRule>();
            foreach (var item in list?.Children ?? [])
            {
                var rule = ReadRule(item, walker);
                if (rule is not null)
                {
                    rules.Add(rule);
                }
            }

            if (walker.HasErrors)
            {
                // Reported in file order, whatever order the checks found them in.
                throw new AuthConfigurationException([.. walker.Problems.OrderBy(p => p.Line).Select(p => $"{source}:{p.Line}: {p.Message}")]);
            }

            return rules;
        }

        private static AccessRule? ReadRule(YamlNode node, YamlWalker walker)
        {
            var line = YamlWalker.Line(node);
            if (node is not YamlMappingNode mapping)
            {
                walker.Error(node, "a rule must be a mapping with users, repositories and actions");
                return null;
            }

            var before = walker.Problems.Count;
            // Walked only for its reports of unknown keys; the known ones are read by name below.
            _ = walker.Entries(mapping, "a rule", "", RuleKeys, (key, _) => $"unknown key \"{key}\" (expected users, repositories, actions)").Count();

            var users = ReadList(mapping, "users", line, walker, allowEmptyList: false, value =>
                value.Length == 0 ? "empty user name" : null);
            var repositories = ReadList(mapping, "repositories", line, walker, allowEmptyList: false, value =>
                value.Length == 0 ? "empty repository pattern"
                : value.Any(c => !(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || "._-/*?".Contains(c)))
                    ? $"repository pattern \"{value}\" has characters no repository name can contain (lower-case letters, digits, . _ - / and the wildcards * ? only)"
                    : null);
            var actions = ReadList(mapping, "actions", line, walker, allowEmptyList: true, value =>
                KnownActions.Contains(value) ? null : $"unknown action \"{value}\" (expected pull, push, delete or \"*\")");

            return walker.Problems.Count == before ? new AccessRule(users, repositories, actions, line) : null;
        }

        private static List<string> ReadList(YamlMappingNode mapping, string key, int ruleLine, YamlWalker walker, bool allowEmptyList, Func<string, string?> check)
        {
            if (!mapping.Children.TryGetValue(new YamlScalarNode(key), out var node))
            {
                walker.Error(new Mark(0, ruleLine, 1), $"rule has no \"{key}\"");
                return [];
            }

            if (node is YamlMappingNode)
            {
                walker.Error(node, $"\"{key}\" must be a list");
                return [];
            }

            // A single scalar stands for a one-item list (users: "*").
            IList<YamlNode> items = node is YamlSequenceNode sequence ? sequence.Children : [node];
            if (items.Count == 0 && !allowEmptyList)
            {
                walker.Error(node, $"\"{key}\" is empty");
                return [];
            }

            var values = new List<string>();
            foreach (var item in items)
            {
                if (item is not YamlScalarNode { Value: { } value })
                {
                    walker.Error(item, $"\"{key}\" entries must be plain strings");
                    continue;
                }

                if (check(value) is { } problem)
                {
                    walker.Error(item, problem);
                    continue;
                }

                values.Add(value);
            }

            return values;
        }
    }
}
