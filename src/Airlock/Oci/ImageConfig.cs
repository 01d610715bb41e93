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

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ImageConfig))]
internal sealed partial class ImageConfigJsonContext : JsonSerializerContext
{
}
