using System.Globalization;

namespace Airlock.Node;

public enum ProblemSeverity
{
    /// <summary>The file works with K3s but probably not as its author meant.</summary>
    Warning,

    /// <summary>K3s or containerd would refuse or silently drop the setting.</summary>
    Error,

    /// <summary>The file cannot be used at all (unreadable, not YAML); nothing may be rendered from it.</summary>
    Fatal,
}

/// <summary>One thing wrong with a registries.yaml, located as <c>file:line</c>.</summary>
public sealed record RegistriesProblem(string Source, int Line, ProblemSeverity Severity, string Message)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Source}:{Line}: {Severity switch { ProblemSeverity.Warning => "warning: ", ProblemSeverity.Fatal => "fatal: ", _ => string.Empty }}{Message}");
}
