using System.Text.RegularExpressions;

namespace Airlock.Node.Mirror;

/// <summary>
/// registries.yaml <c>rewrite</c> as K3s's containerd fork applies it before a request to a mirror endpoint: each
/// pattern is tried in turn and the first whose replacement changes the repository name wins (the fork walks a Go map,
/// in no fixed order; Airlock walks patterns in ordinal order, the order hosts.toml lists them, so the result is
/// stable). Replacements use <c>$1</c>/<c>${name}</c> groups, which Go and .NET read alike.
/// </summary>
public static class RepositoryRewrite
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);

    public static string Apply(IReadOnlyList<RewriteRule> rules, string repository)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(repository);
        if (rules.Count == 0)
        {
            return repository;
        }

        foreach (var rule in rules.OrderBy(r => r.Pattern, StringComparer.Ordinal))
        {
            string rewritten;
            try
            {
                rewritten = Regex.Replace(repository, rule.Pattern, rule.Replacement, RegexOptions.CultureInvariant, MatchTimeout);
            }
            catch (ArgumentException)
            {
                // An invalid pattern is reported by validation; the fork skips it too.
                continue;
            }
            catch (RegexMatchTimeoutException)
            {
                continue;
            }

            if (rewritten != repository)
            {
                return rewritten;
            }
        }

        return repository;
    }
}
