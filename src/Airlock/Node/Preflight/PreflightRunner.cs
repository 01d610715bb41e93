namespace Airlock.Node.Preflight;

/// <summary>Runs every host and configuration check in a fixed order.</summary>
public static class PreflightRunner
{
    /// <summary>
    /// Runs the checks; with <paramref name="airlockKeys"/> (the long flag names of every Airlock verb), config.yaml's keys are
    /// checked too, against those and K3s's.
    /// </summary>
    public static IReadOnlyList<CheckResult> Run(PreflightHost host, ClusterSettings settings, IEnumerable<CheckResult>? extra = null,
        IReadOnlyCollection<string>? airlockKeys = null)
    {
        IPreflightCheck[] checks =
        [
            new DefaultRouteCheck(),
            new RuntimeCheck(),
            new CgroupCheck(),
            new KernelModuleCheck(),
            new SysctlCheck(),
            new DataDirCheck(),
            new ClockCheck(),
            new ConfigCheck(settings),
        ];
        if (airlockKeys is not null)
        {
            checks = [.. checks, new ConfigKeysCheck(settings, airlockKeys)];
        }

        var results = checks.SelectMany(check => check.Run(host)).ToList();
        if (extra is not null)
        {
            results.AddRange(extra);
        }

        return results;
    }

    /// <summary>Exit code for <c>airlock check</c>: 1 when any required check failed.</summary>
    public static bool AnyFailed(IEnumerable<CheckResult> results) => results.Any(r => r.Status == CheckStatus.Fail);
}
