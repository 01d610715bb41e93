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
            var problems = new List<string>();
            var stream = new YamlStream();
            try
            {
                stream.Load(new StringReader(yaml));
            }
            catch (YamlException e)
            {
                throw new AuthConfigurationException([$"{source}:{e.Start.Line}: {e.Message}"]);
            }

            if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            {
                throw new AuthConfigurationException([$"{source}:1: expected a mapping with an \"access:\" list of rules"]);
            }

            YamlSequenceNode? list = null;
            foreach (var (keyNode, value) in root.Children)
            {
                var key = (keyNode as YamlScalarNode)?.Value;
                if (key == "access" && value is YamlSequenceNode sequence)
                {
                    list = sequence;
                }
                else if (key == "access")
                {
                    problems.Add($"{source}:{value.Start.Line}: \"access\" must be a list of rules");
                }
                else
                {
                    problems.Add($"{source}:{keyNode.Start.Line}: unknown key \"{key}\" (expected \"access\")");
                }
            }

            if (list is null && problems.Count == 0)
            {
                problems.Add($"{source}:{root.Start.Line}: missing \"access:\" list of rules");
            }

            var rules = new List<AccessRule>();
            foreach (var item in list?.Children ?? [])
            {
                var rule = ReadRule(item, source, problems);
                if (rule is not null)
                {
                    rules.Add(rule);
                }
            }

            if (problems.Count > 0)
            {
                // Every message starts "source:line:"; report in file order.
                throw new AuthConfigurationException([.. problems.OrderBy(p => int.Parse(p.AsSpan(source.Length + 1, p.IndexOf(':', source.Length + 1) - source.Length - 1), System.Globalization.CultureInfo.InvariantCulture))]);
            }

            return rules;
        }

        private static AccessRule? ReadRule(YamlNode node, string source, List<string> problems)
        {
            var line = (int)node.Start.Line;
            if (node is not YamlMappingNode mapping)
            {
                problems.Add($"{source}:{line}: a rule must be a mapping with users, repositories and actions");
                return null;
            }

            var before = problems.Count;
            foreach (var key in mapping.Children.Keys)
            {
                var name = (key as YamlScalarNode)?.Value ?? "";
                if (!RuleKeys.Contains(name))
                {
                    problems.Add($"{source}:{key.Start.Line}: unknown key \"{name}\" (expected users, repositories, actions)");
                }
            }

            var users = ReadList(mapping, "users", source, line, problems, allowEmptyList: false, (value, where) =>
                value.Length == 0 ? $"{where}: empty user name" : null);
            var repositories = ReadList(mapping, "repositories", source, line, problems, allowEmptyList: false, (value, where) =>
                value.Length == 0 ? $"{where}: empty repository pattern"
                : value.Any(c => !(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || "._-/*?".Contains(c)))
                    ? $"{where}: repository pattern \"{value}\" has characters no repository name can contain (lower-case letters, digits, . _ - / and the wildcards * ? only)"
                    : null);
            var actions = ReadList(mapping, "actions", source, line, problems, allowEmptyList: true, (value, where) =>
                KnownActions.Contains(value) ? null : $"{where}: unknown action \"{value}\" (expected pull, push, delete or \"*\")");

            return problems.Count == before ? new AccessRule(users, repositories, actions, line) : null;
        }

        private static List<string> ReadList(YamlMappingNode mapping, string key, string source, int ruleLine, List<string> problems, bool allowEmptyList, Func<string, string, string?> check)
        {
            if (!mapping.Children.TryGetValue(new YamlScalarNode(key), out var node))
            {
                problems.Add($"{source}:{ruleLine}: rule has no \"{key}\"");
                return [];
            }

            if (node is YamlMappingNode)
            {
                problems.Add($"{source}:{node.Start.Line}: \"{key}\" must be a list");
                return [];
            }

            // A single scalar stands for a one-item list (users: "*").
            IList<YamlNode> items = node is YamlSequenceNode sequence ? sequence.Children : [node];
            if (items.Count == 0 && !allowEmptyList)
            {
                problems.Add($"{source}:{node.Start.Line}: \"{key}\" is empty");
                return [];
            }

            var values = new List<string>();
            foreach (var item in items)
            {
                var where = $"{source}:{item.Start.Line}";
                if (item is not YamlScalarNode { Value: { } value })
                {
                    problems.Add($"{where}: \"{key}\" entries must be plain strings");
                    continue;
                }

                if (check(value, where) is { } problem)
                {
                    problems.Add(problem);
                    continue;
                }

                values.Add(value);
            }

            return values;
        }
    }
}
