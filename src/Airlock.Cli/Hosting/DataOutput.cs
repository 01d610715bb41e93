using System.Text.Json;
using System.Text.Json.Serialization;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Airlock.Cli.Hosting;

/// <summary>
/// Prints data in the format chosen with <c>--output</c>: <c>json</c> and <c>yaml</c> for scripts, a plain
/// aligned table (or <c>text</c>) for people. Every verb whose output is data goes through here.
/// </summary>
internal static class DataOutput
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static void Write<T>(TextWriter output, string format, IReadOnlyList<T> rows, params (string Header, Func<T, string?> Value)[] columns)
    {
        switch (format)
        {
            case "json":
                output.WriteLine(JsonSerializer.Serialize(rows, Json));
                break;
            case "yaml":
                var yaml = new SerializerBuilder()
                    .WithNamingConvention(CamelCaseNamingConvention.Instance)
                    .ConfigureDefaultValuesHandling(DefaultValuesHandling.OmitNull)
                    .Build();
                output.Write(yaml.Serialize(rows));
                break;
            default:
                WriteTable(output, rows, columns);
                break;
        }
    }

    private static void WriteTable<T>(TextWriter output, IReadOnlyList<T> rows, (string Header, Func<T, string?> Value)[] columns)
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
