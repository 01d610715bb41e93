using System.Text.Json;
using System.Text.Json.Serialization;

namespace Airlock.Oci;

/// <summary>
/// The parts of an image configuration (OCI image-spec <c>config.json</c>, Docker's image JSON) a person looks
/// at: when and by whom it was built, for which platform, what it runs, its labels and its build history.
/// </summary>
public sealed record ImageConfig
{
    [JsonPropertyName("created")]
    [JsonConverter(typeof(ConfigTimeConverter))]
    public DateTimeOffset? Created { get; init; }

    [JsonPropertyName("author")]
    public string? Author { get; init; }

    [JsonPropertyName("architecture")]
    public string? Architecture { get; init; }

    [JsonPropertyName("os")]
    public string? Os { get; init; }

    [JsonPropertyName("variant")]
    public string? Variant { get; init; }

    [JsonPropertyName("config")]
    public ImageRunConfig? Config { get; init; }

    [JsonPropertyName("history")]
    public IReadOnlyList<ImageHistoryEntry>? History { get; init; }

    /// <summary>The platform the config declares, or null when it names no os and architecture.</summary>
    [JsonIgnore]
    public Platform? Platform => Os is { Length: > 0 } os && Architecture is { Length: > 0 } architecture
        ? new Platform { Os = os, Architecture = architecture, Variant = Variant }
        : null;

    /// <summary>Parses a config; null when it is not a JSON object this shape fits (an artifact's config, say).</summary>
    public static ImageConfig? TryParse(ReadOnlySpan<byte> content)
    {
        try
        {
            return JsonSerializer.Deserialize(content, ImageConfigJsonContext.Default.ImageConfig);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>The execution parameters of an image config (<c>config</c> inside it).</summary>
public sealed record ImageRunConfig
{
    [JsonPropertyName("Labels")]
    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    [JsonPropertyName("Entrypoint")]
    public IReadOnlyList<string>? Entrypoint { get; init; }

    [JsonPropertyName("Cmd")]
    public IReadOnlyList<string>? Cmd { get; init; }

    [JsonPropertyName("WorkingDir")]
    public string? WorkingDir { get; init; }

    [JsonPropertyName("User")]
    public string? User { get; init; }
}

/// <summary>One build step of an image (<c>history[]</c>); empty-layer steps changed only metadata.</summary>
public sealed record ImageHistoryEntry
{
    [JsonPropertyName("created")]
    [JsonConverter(typeof(ConfigTimeConverter))]
    public DateTimeOffset? Created { get; init; }

    [JsonPropertyName("created_by")]
    public string? CreatedBy { get; init; }

    [JsonPropertyName("author")]
    public string? Author { get; init; }

    [JsonPropertyName("comment")]
    public string? Comment { get; init; }

    [JsonPropertyName("empty_layer")]
    public bool? EmptyLayer { get; init; }
}

/// <summary>
/// A config's times as builders write them: RFC 3339, often with Go's nanoseconds (nine fractional digits, more than
/// <see cref="DateTimeOffset"/> parses). A time that still cannot be read is left out rather than failing the config.
/// </summary>
public sealed class ConfigTimeConverter : JsonConverter<DateTimeOffset?>
{
    public override DateTimeOffset? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String || reader.GetString() is not { } text)
        {
            reader.Skip();
            return null;
        }

        // Keep at most seven fractional digits (100 ns), the most DateTimeOffset holds.
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            var end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
            {
                end++;
            }

            if (end - dot - 1 > 7)
            {
                text = string.Concat(text.AsSpan(0, dot + 8), text.AsSpan(end));
            }
        }

        return DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var time)
            ? time
            : null;
    }

    public override void Write(Utf8JsonWriter writer, DateTimeOffset? value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (value is { } time)
        {
            writer.WriteStringValue(time);
        }
        else
        {
            writer.WriteNullValue();
        }
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ImageConfig))]
internal sealed partial class ImageConfigJsonContext : JsonSerializerContext
{
}
