using System.Text.Json;
using System.Text.Json.Serialization;

namespace Airlock.Oci;

/// <summary>
/// The parts of a manifest or index that matter for storage and graph walks. The original bytes stay the
/// source of truth (digests are over them); this is a read-only view parsed from them.
/// </summary>
public sealed class ManifestDocument
{
    private ManifestDocument(string mediaType, ManifestJson json)
    {
        MediaType = mediaType;
        ArtifactType = json.ArtifactType;
        Config = json.Config;
        Layers = json.Layers ?? [];
        Manifests = json.Manifests ?? [];
        Subject = json.Subject;
        Annotations = json.Annotations;
    }

    /// <summary>The effective media type: the body's <c>mediaType</c>, else the one it was stored or served with.</summary>
    public string MediaType { get; }

    public string? ArtifactType { get; }

    public Descriptor? Config { get; }

    public IReadOnlyList<Descriptor> Layers { get; }

    public IReadOnlyList<Descriptor> Manifests { get; }

    public Descriptor? Subject { get; }

    public IReadOnlyDictionary<string, string>? Annotations { get; }

    public bool IsIndex => MediaTypes.IsIndex(MediaType);

    /// <summary>Every descriptor this document points at, children of the graph walk (subject excluded).</summary>
    public IEnumerable<Descriptor> Children =>
        IsIndex ? Manifests : (Config is null ? Layers : Layers.Prepend(Config));

    /// <summary>
    /// Parses a manifest or index. <paramref name="declaredMediaType"/> is the Content-Type it came with;
    /// when the body names a media type too they must agree, as the distribution spec requires.
    /// </summary>
    public static ManifestDocument Parse(ReadOnlySpan<byte> content, string? declaredMediaType)
    {
        ManifestJson? json;
        try
        {
            json = JsonSerializer.Deserialize(content, OciJsonContext.Default.ManifestJson);
        }
        catch (JsonException ex)
        {
            throw new ManifestFormatException($"manifest is not valid JSON: {ex.Message}", ex);
        }

        if (json is null)
        {
            throw new ManifestFormatException("manifest is empty");
        }

        if (json.SchemaVersion != 2)
        {
            throw new ManifestFormatException(json.SchemaVersion == 1
                ? "Docker schema 1 manifests are not supported"
                : $"schemaVersion must be 2, not {json.SchemaVersion?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "missing"}");
        }

        var declared = NormaliseContentType(declaredMediaType);
        if (json.MediaType is not null && declared is not null && !string.Equals(json.MediaType, declared, StringComparison.Ordinal)
            && MediaTypes.IsManifest(declared))
        {
            throw new ManifestFormatException($"mediaType \"{json.MediaType}\" in the body does not match Content-Type \"{declared}\"");
        }

        var mediaType = json.MediaType ?? declared ?? Guess(json);
        if (!MediaTypes.IsManifest(mediaType))
        {
            throw new ManifestFormatException($"media type \"{mediaType}\" is not a manifest or index media type");
        }

        if (MediaTypes.IsIndex(mediaType))
        {
            if (json.Manifests is null)
            {
                throw new ManifestFormatException("index has no \"manifests\" array");
            }
        }
        else
        {
            if (json.Config is null)
            {
                throw new ManifestFormatException("image manifest has no \"config\" descriptor");
            }

            if (json.Layers is null)
            {
                throw new ManifestFormatException("image manifest has no \"layers\" array");
            }
        }

        return new ManifestDocument(mediaType, json);
    }

    private static string? NormaliseContentType(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
        {
            return null;
        }

        var semicolon = contentType.IndexOf(';', StringComparison.Ordinal);
        return (semicolon >= 0 ? contentType[..semicolon] : contentType).Trim();
    }

    // OCI allows mediaType to be absent; decide from the shape, as containerd does.
    private static string Guess(ManifestJson json) => json.Manifests is not null ? MediaTypes.OciIndex : MediaTypes.OciManifest;
}

/// <summary>A manifest that cannot be accepted, with a reason fit for an error detail.</summary>
public sealed class ManifestFormatException : Exception
{
    public ManifestFormatException(string message)
        : base(message)
    {
    }

    public ManifestFormatException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

internal sealed record ManifestJson
{
    [JsonPropertyName("schemaVersion")]
    public int? SchemaVersion { get; init; }

    [JsonPropertyName("mediaType")]
    public string? MediaType { get; init; }

    [JsonPropertyName("artifactType")]
    public string? ArtifactType { get; init; }

    [JsonPropertyName("config")]
    public Descriptor? Config { get; init; }

    [JsonPropertyName("layers")]
    public List<Descriptor>? Layers { get; init; }

    [JsonPropertyName("manifests")]
    public List<Descriptor>? Manifests { get; init; }

    [JsonPropertyName("subject")]
    public Descriptor? Subject { get; init; }

    [JsonPropertyName("annotations")]
    public Dictionary<string, string>? Annotations { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ManifestJson))]
[JsonSerializable(typeof(Descriptor))]
[JsonSerializable(typeof(List<Descriptor>))]
internal sealed partial class OciJsonContext : JsonSerializerContext
{
}
