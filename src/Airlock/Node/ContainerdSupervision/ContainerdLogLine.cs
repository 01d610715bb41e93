using System.Collections;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Airlock.Node.ContainerdSupervision;

/// <summary>
/// One line of containerd's log in logrus's logfmt (<c>time="…" level=info msg="…" key=value …</c>), parsed into
/// its level, message and other fields so it can be forwarded to <see cref="ILogger"/> as a structured entry.
/// A line that is not logfmt (a Go panic, a plugin's raw output) is kept whole as the message at level
/// Information — nothing containerd says is dropped.
/// </summary>
public sealed class ContainerdLogLine : IReadOnlyList<KeyValuePair<string, object?>>
{
    private readonly List<KeyValuePair<string, object?>> _fields;

    private ContainerdLogLine(LogLevel level, string message, List<KeyValuePair<string, object?>> fields)
    {
        Level = level;
        Message = message;
        _fields = fields;
    }

    public LogLevel Level { get; }

    public string Message { get; }

    /// <summary>The fields beyond time, level and msg, in the order containerd wrote them.</summary>
    public IReadOnlyList<KeyValuePair<string, object?>> Fields => _fields.GetRange(1, _fields.Count - 1);

    public int Count => _fields.Count + 1;

    public KeyValuePair<string, object?> this[int index] => index < _fields.Count
        ? _fields[index]
        : new("{OriginalFormat}", "containerd: {Message}");

    public static ContainerdLogLine Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var pairs = TryParseLogfmt(line);
        if (pairs is null || !pairs.Any(p => p.Key == "msg"))
        {
            return new ContainerdLogLine(LogLevel.Information, line, [new("Message", line)]);
        }

        var level = LogLevel.Information;
        var message = string.Empty;
        var fields = new List<KeyValuePair<string, object?>>();
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "time":
                    break;
                case "level":
                    level = MapLevel(value);
                    break;
                case "msg":
                    message = value;
                    break;
                default:
                    fields.Add(new(key, value));
                    break;
            }
        }

        fields.Insert(0, new("Message", message));
        if (level == LogLevel.Information && IsPluginChatter(message))
        {
            level = LogLevel.Debug;
        }

        return new ContainerdLogLine(level, message, fields);
    }

    // containerd announces each of its ~60 plugins at info level on every start (1.x: `loading plugin "id"...`,
    // 2.x: `loading plugin` with id=…), and each one it skips; in the agent's log that buries what matters. They are
    // forwarded at debug, like K3s, whose containerd log is a separate file nobody reads at start-up.
    private static readonly string[] PluginChatter = ["loading plugin", "skip loading plugin", "skip plugin", "skipping plugin", "skipping tracing processor"];

    /// <summary>Whether an info message is one of containerd's per-plugin start-up lines (forwarded at debug).</summary>
    public static bool IsPluginChatter(string message) =>
        PluginChatter.Any(prefix => message.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>logrus levels; containerd's "fatal" and "panic" are the last thing it says before exiting.</summary>
    public static LogLevel MapLevel(string level) => level switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "info" => LogLevel.Information,
        "warning" or "warn" => LogLevel.Warning,
        "error" => LogLevel.Error,
        "fatal" or "panic" => LogLevel.Critical,
        _ => LogLevel.Information,
    };

    /// <summary>Writes the line to <paramref name="logger"/> at its own level, every field a structured property.</summary>
    public void WriteTo(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        logger.Log(Level, default, this, null, static (state, _) => state.ToString());
    }

    /// <summary>The message followed by the other fields as <c>key=value</c>, as a console shows it.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder("containerd: ").Append(Message);
        foreach (var (key, value) in _fields.Skip(1))
        {
            sb.Append(' ').Append(key).Append('=').Append(value);
        }

        return sb.ToString();
    }

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        for (var i = 0; i < Count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>key=value pairs; values bare or double-quoted with Go escapes. Null when the line is not logfmt.</summary>
    private static List<(string Key, string Value)>? TryParseLogfmt(string line)
    {
        var pairs = new List<(string, string)>();
        var i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && line[i] == ' ')
            {
                i++;
            }

            if (i == line.Length)
            {
                break;
            }

            var keyStart = i;
            while (i < line.Length && line[i] is not ('=' or ' ' or '"'))
            {
                i++;
            }

            if (i == keyStart || i == line.Length || line[i] != '=')
            {
                return null;
            }

            var key = line[keyStart..i];
            i++;
            string value;
            if (i < line.Length && line[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= line.Length)
                    {
                        return null;
                    }

                    var c = line[i++];
                    if (c == '"')
                    {
                        break;
                    }

                    if (c == '\\' && i < line.Length)
                    {
                        var escaped = line[i++];
                        sb.Append(escaped switch { 'n' => '\n', 't' => '\t', 'r' => '\r', _ => escaped });
                    }
                    else
                    {
                        sb.Append(c);
                    }
                }

                value = sb.ToString();
            }
            else
            {
                var valueStart = i;
                while (i < line.Length && line[i] != ' ')
                {
                    i++;
                }

                value = line[valueStart..i];
            }

            pairs.Add((key, value));
        }

        return pairs.Count == 0 ? null : pairs;
    }
}
