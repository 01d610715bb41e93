using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Airlock.Distribution;

/// <summary>One entry of an error body <c>{"errors":[{"code":…,"message":…,"detail":…}]}</c>.</summary>
public sealed record RegistryError(string Code, string? Message, string? Detail);

/// <summary>
/// The error body of the distribution API, <c>{"errors":[{"code":…,"message":…,"detail":…}]}</c>, as the registry and
/// the node mirror write it (<see cref="OciErrorTable.WriteAsync"/>) and the client reads it (distribution's
/// <c>errcode.Errors</c>).
/// </summary>
public static class ErrorBody
{
    /// <summary>Writes a body holding the one <paramref name="error"/>.</summary>
    public static void Write(IBufferWriter<byte> output, RegistryError error)
    {
        ArgumentNullException.ThrowIfNull(error);
        using var json = new Utf8JsonWriter(output);
        json.WriteStartObject();
        json.WriteStartArray("errors");
        json.WriteStartObject();
        json.WriteString("code", error.Code);
        json.WriteString("message", error.Message);
        if (error.Detail is not null)
        {
            json.WriteString("detail", error.Detail);
        }

        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>Reads an error body; anything else (HTML, empty, huge, entries without a code) yields no entries.</summary>
    public static IReadOnlyList<RegistryError> Parse(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return [];
        }

        try
        {
            var parsed = JsonSerializer.Deserialize(body, DistributionJsonContext.Default.ErrorBodyJson);
            if (parsed?.Errors is null)
            {
                return [];
            }

            // A detail may be any JSON value (distribution sends objects); it is kept as its JSON text.
            return parsed.Errors
                .Where(e => !string.IsNullOrEmpty(e.Code))
                .Select(e => new RegistryError(e.Code!, e.Message, e.Detail.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null ? null : e.Detail.ToString()))
                .ToList();
        }
        catch (JsonException)
        {
            return [];
        }
    }
}

internal sealed record ErrorBodyJson
{
    [JsonPropertyName("errors")]
    public List<ErrorEntryJson>? Errors { get; init; }
}

internal sealed record ErrorEntryJson
{
    [JsonPropertyName("code")]
    public string? Code { get; init; }

    [JsonPropertyName("message")]
    public string? Message { get; init; }

    [JsonPropertyName("detail")]
    public JsonElement Detail { get; init; }
}
