using System.CommandLine;
using Airlock.GoCompat;

namespace Airlock.Cli.Hosting;

/// <summary>
/// A flag that takes a duration in Go's syntax (<c>90s</c>, <c>1h30m</c>, <c>500ms</c>), as K3s flags do; every duration flag
/// of every verb is one. The value is checked while the command line is parsed, so a bad one (from the command line, the
/// environment or config.yaml) is a usage error (exit 2) naming the flag and the value, reported with every other bad flag.
/// A bare number other than <c>0</c> is refused with a hint to add a unit instead of being guessed at (older flags read
/// <c>10</c> as seconds in one verb and days in another).
/// </summary>
internal sealed class DurationOption : Option<string>
{
    public DurationOption(string name, string description, string defaultValue)
        : base(name)
    {
        Description = description;
        DefaultValueFactory = _ => defaultValue;
        Validators.Add(result =>
        {
            if (Check(result.GetValueOrDefault<string>(), out _) is { } problem)
            {
                result.AddError(problem);
            }
        });
    }

    /// <summary><c>off</c> (and any zero duration: <c>0</c>, <c>0s</c>) turn the feature off: <see cref="GetDurationOrOff"/> returns null.</summary>
    public bool AllowsOff { get; init; }

    /// <summary>Zero is refused (timeouts); otherwise <c>0</c> is a valid duration (e.g. no grace period).</summary>
    public bool Positive { get; init; }

    /// <summary>The flag's duration; a bad value never gets here (the parser refused it with a usage error).</summary>
    public TimeSpan GetDuration(ParseResult parseResult) =>
        GetDurationOrOff(parseResult) ?? throw new InvalidOperationException($"{Name} is off; read it with {nameof(GetDurationOrOff)}");

    /// <summary>The flag's duration, or null when it is <c>off</c> (only where <see cref="AllowsOff"/>).</summary>
    public TimeSpan? GetDurationOrOff(ParseResult parseResult)
    {
        var text = parseResult.GetValue(this);
        if (Check(text, out var duration) is { } problem)
        {
            throw new UsageException(problem);
        }

        return duration;
    }

    private string? Check(string? text, out TimeSpan? duration)
    {
        duration = null;
        text ??= string.Empty;
        if (AllowsOff && text == "off")
        {
            return null;
        }

        if (!GoDuration.TryParse(text, out var parsed, out var error))
        {
            return $"{Name} \"{text}\" {error}";
        }

        if (AllowsOff && parsed == TimeSpan.Zero)
        {
            return null;
        }

        if (Positive && parsed <= TimeSpan.Zero)
        {
            return $"{Name} \"{text}\" must be longer than 0, e.g. 10s";
        }

        duration = parsed;
        return null;
    }
}
