using System.CommandLine;

namespace Airlock.Cli.Hosting;

/// <summary>Options shared by several verbs, defined once so their names, defaults and help agree.</summary>
internal static class CommonOptions
{
    public const string DefaultConfigPath = "/etc/airlock/config.yaml";

    public static readonly Option<string> Config = new("--config", "-c")
    {
        Description = $"Configuration file; keys are long flag names (default {DefaultConfigPath}, or $AIRLOCK_CONFIG).",
        Recursive = true,
    };

    /// <summary><c>/var/lib/airlock</c> for root, else a directory under the user's home, as K3s does for rootless.</summary>
    public static string DefaultDataDir()
    {
        if (Environment.IsPrivilegedProcess)
        {
            return "/var/lib/airlock";
        }

        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return Path.Combine(home, ".local", "share", "airlock");
    }

    public static Option<string> DataDir() => new("--data-dir", "-d")
    {
        Description = "Directory for Airlock's state (default /var/lib/airlock as root, ~/.local/share/airlock otherwise).",
        DefaultValueFactory = _ => DefaultDataDir(),
    };

    /// <summary><c>--data-dir</c> of a verb that only works on data already there: given explicitly, it must exist.</summary>
    public static PathOption ExistingDataDir() =>
        new("--data-dir", PathKind.Directory, "Directory of Airlock's state (default /var/lib/airlock as root, ~/.local/share/airlock otherwise).", DefaultDataDir(), "-d");

    public static Option<string> Output(string defaultFormat = "table")
    {
        var option = new Option<string>("--output")
        {
            Description = "Output format: json, yaml or table.",
            DefaultValueFactory = _ => defaultFormat,
        };
        option.AcceptOnlyFromAmong("json", "yaml", "table", "text");
        return option;
    }
}
