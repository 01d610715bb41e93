namespace Airlock.Node.Preflight;

/// <summary>Outcome of one pre-flight check.</summary>
public enum CheckStatus
{
    Pass,
    Warn,
    Fail,
}

/// <summary>
/// One finding: what was checked, what was found, and — when it is not fine — the command or setting that
/// fixes it, so a user on an air-gapped host learns it here rather than from a failing cluster.
/// </summary>
public sealed record CheckResult(string Name, CheckStatus Status, string Message, string? Fix = null)
{
    public static CheckResult Pass(string name, string message) => new(name, CheckStatus.Pass, message);

    public static CheckResult Warn(string name, string message, string? fix = null) => new(name, CheckStatus.Warn, message, fix);

    public static CheckResult Fail(string name, string message, string? fix = null) => new(name, CheckStatus.Fail, message, fix);
}

/// <summary>A check of the host or of the configuration; may report several findings.</summary>
internal interface IPreflightCheck
{
    IEnumerable<CheckResult> Run(PreflightHost host);
}
