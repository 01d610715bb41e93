using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Airlock.Oci;

namespace Airlock.Bundles;

/// <summary>JSON Airlock writes into archives, compact and with <c>+</c> unescaped as Go's encoder writes it.</summary>
internal static class BundleJson
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> type)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            JsonSerializer.Serialize(writer, value, type);
        }

        return buffer.WrittenSpan.ToArray();
    }
}

/// <summary>The <c>index.json</c> of an OCI layout (and the body of an index Airlock composes).</summary>
internal sealed record LayoutIndex
{
    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = 2;

    [JsonPropertyName("mediaType")]
    public string MediaType { get; init; } = MediaTypes.OciIndex;

    [JsonPropertyName("manifests")]
    public required IReadOnlyList<Descriptor> Manifests { get; init; }

    [JsonPropertyName("annotations")]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>One image of Docker's <c>manifest.json</c> (docker save, podman save, skopeo, ctr export).</summary>
internal sealed record DockerArchiveImage
{
    [JsonPropertyName("Config")]
    public string? Config { get; init; }

    [JsonPropertyName("RepoTags")]
    public IReadOnlyList<string>? RepoTags { get; init; }

    [JsonPropertyName("Layers")]
    public IReadOnlyList<string>? Layers { get; init; }
}

/// <summary>
/// A Docker schema 2 manifest with Go's field order and no indentation, as docker/skopeo's Go code marshals
/// it, so a manifest synthesised for a <c>docker save</c> archive has the digest skopeo computes for it.
/// </summary>
internal sealed record DockerSchema2Manifest
{
    [JsonPropertyName("schemaVersion")]
    public int SchemaVersion { get; init; } = 2;

    [JsonPropertyName("mediaType")]
    public string MediaType { get; init; } = MediaTypes.DockerManifest;

    [JsonPropertyName("config")]
    public required DockerSchema2Descriptor Config { get; init; }

    [JsonPropertyName("layers")]
    public required IReadOnlyList<DockerSchema2Descriptor> Layers { get; init; }
}

internal sealed record DockerSchema2Descriptor
{
    [JsonPropertyName("mediaType")]
    public required string MediaType { get; init; }

    [JsonPropertyName("size")]
    public required long Size { get; init; }

    [JsonPropertyName("digest")]
    public required string Digest { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(LayoutIndex))]
[JsonSerializable(typeof(List<DockerArchiveImage>))]
[JsonSerializable(typeof(DockerSchema2Manifest))]
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, string>>))]
internal sealed partial class BundleJsonContext : JsonSerializerContext
{
}
