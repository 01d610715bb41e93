using System.Text.RegularExpressions;
using Airlock.Oci;

namespace Airlock.Bundles.Sync;

/// <summary>What one <c>sync:</c> entry names: one image, every tag of a repository, or every repository of a registry.</summary>
public enum SyncType
{
    Image,
    Repository,
    Registry,
}

/// <summary>How a <c>creds:</c> entry reaches its registry (regsync's <c>tls:</c> values).</summary>
public enum SyncTls
{
    Enabled,
    Insecure,
    Disabled,
}

/// <summary>A regsync configuration file (version 1) after templates are expanded and defaults applied.</summary>
public sealed record SyncConfig
{
    public IReadOnlyList<SyncCredential> Creds { get; init; } = [];

    public IReadOnlyList<SyncEntry> Sync { get; init; } = [];

    /// <summary>Images copied at once (regsync <c>defaults.parallel</c>, at least 1).</summary>
    public int Parallel { get; init; } = 1;

    /// <summary>Time between passes when not run <c>--once</c> (regsync <c>defaults.interval</c>).</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMinutes(60);
}

/// <summary>Login and TLS for one registry (<c>creds:</c>); these take precedence over <c>--creds</c> and <c>--registries</c>.</summary>
public sealed record SyncCredential(string Registry, string? User, string? Pass, SyncTls Tls);

/// <summary>One <c>sync:</c> entry.</summary>
public sealed record SyncEntry
{
    public required SyncType Type { get; init; }

    public required string Source { get; init; }

    public required string Target { get; init; }

    public TagFilter Tags { get; init; } = TagFilter.All;

    /// <summary>Platforms to keep; <c>null</c> copies the image (or index) as it is, digest unchanged.</summary>
    public IReadOnlyList<Platform>? Platforms { get; init; }

    /// <summary>Where the entry starts in the file, for messages.</summary>
    public int Line { get; init; }
}

/// <summary>
/// regsync's <c>tags: {allow, deny}</c>: a tag is kept when it matches some allow pattern (or there are none)
/// and no deny pattern. Patterns match the whole tag, as regsync anchors them with <c>^…$</c>.
/// </summary>
public sealed record TagFilter(IReadOnlyList<Regex> Allow, IReadOnlyList<Regex> Deny)
{
    public static TagFilter All { get; } = new([], []);

    public bool Matches(string tag) =>
        (Allow.Count == 0 || Allow.Any(r => r.IsMatch(tag))) && !Deny.Any(r => r.IsMatch(tag));
}

/// <summary>One problem found in a sync file, with where it is.</summary>
public sealed record SyncConfigProblem(string File, int Line, int Column, string Message, bool IsWarning = false)
{
    public override string ToString() => $"{File}:{Line}:{Column}: {(IsWarning ? "warning" : "error")}: {Message}";
}

/// <summary>A sync file that cannot be used; <see cref="Problems"/> lists every error found, not only the first.</summary>
public sealed class SyncConfigException(IReadOnlyList<SyncConfigProblem> problems)
    : Exception(string.Join(Environment.NewLine, problems.Select(p => p.ToString())))
{
    public IReadOnlyList<SyncConfigProblem> Problems { get; } = problems;
}
