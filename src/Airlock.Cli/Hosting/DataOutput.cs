using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Airlock.Cli.Hosting;

/// <summary>
/// Prints data in the format chosen with <c>--output</c>: <c>json</c> and <c>yaml</c> for scripts, a plain
/// aligned table (or <c>text</c>) for people. Every verb whose output is data goes through here.
/// </summary>
/// <remarks>
/// Both data formats come from one source-generated <see cref="JsonTypeInfo{T}"/>: JSON is that serialization,
/// YAML is the same JSON document written with YamlDotNet's emitter. So the two always have the same keys,
/// and nothing needs reflection, which the Native AOT build does not have.
/// </remarks>
internal static class DataOutput
{
    /// <summary>Writes <paramref name="value"/> as <c>json</c> or <c>yaml</c>.</summary>
    public static void Write<T>(TextWriter output, string format, T value, JsonTypeInfo<T> type)
    {
        switch (format)
        {
            case "json":
                output.WriteLine(Json(value, type));
                break;
            case "yaml":
                WriteYaml(output, JsonSerializer.SerializeToElement(value, type));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "data output is json or yaml");
        }
    }

    /// <summary>Writes <paramref name="rows"/> as <c>json</c>, <c>yaml</c>, or else a table of <paramref name="columns"/>.</summary>
    public static void Write<T>(TextWriter output, string format, IReadOnlyList<T> rows, JsonTypeInfo<IReadOnlyList<T>> type,
        params (string Header, Func<T, string?> Value)[] columns)
    {
        if (format is "json" or "yaml")
        {
            Write(output, format, rows, type);
        }
        else
        {
            WriteTable(output, rows, columns);
        }
    }

    // JSON for people and grep as much as for programs: "+", "<", "'" and non-ASCII as themselves, not \u002B.
    private static readonly JsonWriterOptions Readable = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = true };

    /// <summary>Indented JSON with only the escaping JSON needs (quotes, backslashes, control characters).</summary>
    public static string Json<T>(T value, JsonTypeInfo<T> type)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, Readable))
        {
            JsonSerializer.Serialize(writer, value, type);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Writes a JSON document as one block-style YAML document with the same keys, values and order.</summary>
    public static void WriteYaml(TextWriter output, JsonElement document)
    {
        var emitter = new Emitter(output);
        emitter.Emit(new StreamStart());
        emitter.Emit(new DocumentStart());
        Emit(emitter, document);
        emitter.Emit(new DocumentEnd(isImplicit: true));
        emitter.Emit(new StreamEnd());
    }

    private static void Emit(Emitter emitter, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                emitter.Emit(new MappingStart(AnchorName.Empty, TagName.Empty, isImplicit: true, MappingStyle.Block));
                foreach (var property in value.EnumerateObject())
                {
                    emitter.Emit(String(property.Name));
                    Emit(emitter, property.Value);
                }

                emitter.Emit(new MappingEnd());
                break;
            case JsonValueKind.Array:
                emitter.Emit(new SequenceStart(AnchorName.Empty, TagName.Empty, isImplicit: true, SequenceStyle.Block));
                foreach (var item in value.EnumerateArray())
                {
                    Emit(emitter, item);
                }

                emitter.Emit(new SequenceEnd());
                break;
            case JsonValueKind.String:
                emitter.Emit(String(value.GetString()!));
                break;
            case JsonValueKind.Number:
                emitter.Emit(Plain(value.GetRawText()));
                break;
            case JsonValueKind.True:
                emitter.Emit(Plain("true"));
                break;
            case JsonValueKind.False:
                emitter.Emit(Plain("false"));
                break;
            default:
                emitter.Emit(Plain("null"));
                break;
        }
    }

    private static Scalar Plain(string text) => new(AnchorName.Empty, TagName.Empty, text, ScalarStyle.Plain, isPlainImplicit: true, isQuotedImplicit: false);

    /// <summary>A string, quoted when a YAML reader would otherwise take it for a number, boolean or null.</summary>
    private static Scalar String(string text) =>
        new(AnchorName.Empty, TagName.Empty, text, ReadsAsNonString(text) ? ScalarStyle.DoubleQuoted : ScalarStyle.Any, isPlainImplicit: true, isQuotedImplicit: true);

    // YAML 1.1 (yaml.v2, PyYAML) and 1.2 core schema plain scalars that are not strings.
    private static readonly HashSet<string> NonStringWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "", "~", "null", "true", "false", "yes", "no", "y", "n", "on", "off", ".inf", "-.inf", "+.inf", ".nan",
    };

    private static bool ReadsAsNonString(string text) =>
        NonStringWords.Contains(text)
        || double.TryParse(text.Replace("_", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out _)
        || (text.Length > 2 && text[0] == '0' && text[1] is 'x' or 'X' or 'o' or 'b');

    /// <summary>A table of <paramref name="columns"/>: a header row, then one aligned row per item.</summary>
    public static void WriteTable<T>(TextWriter output, IReadOnlyList<T> rows, params (string Header, Func<T, string?> Value)[] columns)
    {
        var cells = rows.Select(r => columns.Select(c => c.Value(r) ?? string.Empty).ToArray()).ToList();
        var widths = columns.Select((c, i) => Math.Max(c.Header.Length, cells.Count == 0 ? 0 : cells.Max(row => row[i].Length))).ToArray();
        output.WriteLine(string.Join("  ", columns.Select((c, i) => i == columns.Length - 1 ? c.Header : c.Header.PadRight(widths[i]))).TrimEnd());
        foreach (var row in cells)
        {
            output.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
        }
    }
}
