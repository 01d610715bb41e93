using System.CommandLine;

namespace Airlock.Cli.Hosting;

/// <summary>What a <see cref="PathOption"/> must name.</summary>
internal enum PathKind
{
    File,
    Directory,

    /// <summary>An archive file or an OCI layout directory.</summary>
    FileOrDirectory,

    /// <summary>A Unix socket some other process serves (any non-directory passes: the connection tells the rest).</summary>
    Socket,
}

/// <summary>
/// A flag naming a file or directory the verb reads. Given explicitly — on the command line, in config.yaml or by
/// <c>AIRLOCK_*</c> — it must exist: <see cref="AirlockCli"/> checks every one of the invoked verb before the verb runs
/// and refuses (exit 1, nothing written or removed) naming the path, where it came from and what fixes it. Only the
/// built-in default may be absent, where the verb has one that means "none" (registries.yaml, as K3s reads its own).
/// A typo must never turn into "no mirrors", "no users" or "no images": in an air gap that is a node pulling from
/// the internet.
/// </summary>
internal sealed class PathOption : Option<string>
{
    public PathOption(string name, PathKind kind, string description, string? defaultValue = null, params string[] aliases)
        : base(name, aliases)
    {
        Kind = kind;
        Description = description;
        if (defaultValue is not null)
        {
            DefaultValueFactory = _ => defaultValue;
        }
    }

    public PathKind Kind { get; }

    /// <summary>What to do besides correcting the setting, e.g. "start that containerd first" (default: "create it").</summary>
    public string? Remedy { get; init; }

    /// <summary>
    /// One message per <see cref="PathOption"/> of the invoked verb whose explicitly given value names nothing (or the wrong
    /// kind of thing); <paramref name="sources"/> says which came from the environment or config.yaml, the rest were typed.
    /// </summary>
    public static IReadOnlyList<string> FindMissing(ParseResult parsed, IReadOnlyDictionary<Option, ValueSource> sources)
    {
        var problems = new List<string>();
        foreach (var option in ConfigSources.OptionsOf(parsed.CommandResult.Command).OfType<PathOption>())
        {
            if (parsed.GetResult(option) is not { Implicit: false } || parsed.GetValue(option) is not { } path)
            {
                continue;
            }

            if (option.Problem(path) is { } problem)
            {
                var source = sources.TryGetValue(option, out var given) ? given : ValueSource.CommandLine(option);
                problems.Add($"{option.Name}: {problem} (from {source.Description}); {option.Remedy ?? "create it"}, or {source.Fix}");
            }
        }

        return problems;
    }

    private string? Problem(string path)
    {
        var shown = Path.IsPathRooted(path) ? $"\"{path}\"" : $"\"{path}\" ({Path.GetFullPath(path)})";
        var isDirectory = Directory.Exists(path);
        var isFile = !isDirectory && File.Exists(path);
        return Kind switch
        {
            PathKind.Directory when isFile => $"{shown} is a file, not a directory",
            PathKind.Directory when !isDirectory => $"directory {shown} does not exist",
            PathKind.File when isDirectory => $"{shown} is a directory, not a file",
            PathKind.Socket when isDirectory => $"{shown} is a directory, not a socket",
            PathKind.File when !isFile => $"file {shown} does not exist",
            PathKind.Socket when !isFile => $"socket {shown} does not exist",
            PathKind.FileOrDirectory when !isFile && !isDirectory => $"{shown} does not exist",
            _ => null,
        };
    }
}

/// <summary>Where a value the user did not type came from, so a message can say what to correct.</summary>
internal sealed record ValueSource(string Description, string Fix)
{
    public static ValueSource CommandLine(Option option) => new("the command line", $"correct {option.Name}");

    public static ValueSource Environment(string variable) => new($"${variable}", $"correct or unset {variable}");

    public static ValueSource ConfigFile(string path, string key) => new($"\"{key}\" in {path}", $"correct or remove \"{key}\" in {path}");
}
