using Airlock.Configuration;

namespace Airlock.Node.Preflight;

/// <summary>
/// Keys of config.yaml that nothing reads. K3s and Airlock both take a key they do not know for another tool's and
/// say nothing, so <c>cluster-cdir: 10.50.0.0/16</c> leaves the cluster on the default range without a word. A key
/// close to a known one is almost surely that key misspelt (fail, naming it); one far from any is reported as a warning.
/// </summary>
internal sealed class ConfigKeysCheck(ClusterSettings settings, IReadOnlyCollection<string> airlockKeys) : IPreflightCheck
{
    private const string Name = "config-keys";

    public IEnumerable<CheckResult> Run(PreflightHost host)
    {
        var known = new HashSet<string>(K3sConfigKeys.All, StringComparer.Ordinal);
        known.UnionWith(airlockKeys);
        var results = new List<CheckResult>();
        foreach (var setting in settings.All.OrderBy(s => s.Location, StringComparer.Ordinal))
        {
            // K3s's "key+:" appends to a list given elsewhere; "key-:" removes from it.
            var key = setting.Key.TrimEnd('+', '-');
            if (known.Contains(key))
            {
                continue;
            }

            results.Add(Spelling.Closest(key, known) is { } closest
                ? CheckResult.Fail(Name, $"{setting.Location}: unknown key \"{setting.Key}\"; did you mean \"{closest}\"?", $"rename it to {closest}")
                : CheckResult.Warn(Name, $"{setting.Location}: unknown key \"{setting.Key}\" (neither a K3s nor an Airlock flag); nothing reads it"));
        }

        if (results.Count == 0)
        {
            results.Add(CheckResult.Pass(Name, settings.Source.Length == 0 ? "no config file" : $"every key of {settings.Source} is a K3s or Airlock flag"));
        }

        return results;
    }
}
