using System.Buffers;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Airlock.Conformance.Tests.Suite;

/// <summary>
/// The image-spec shapes the upstream suite marshals (its image.go): a trimmed descriptor with an extra
/// <c>newUnspecifiedField</c> that registries must store and serve untouched, manifests and indexes with
/// subject and annotations, and the config. Written with Go's field order, omitempty rules and
/// tab-indented layout (json.MarshalIndent) so the documents have the same structure as upstream's;
/// the suite's own tiny writer keeps it independent of the implementation under test.
/// </summary>
internal sealed record OciDescriptor(string MediaType, string Digest, long Size)
{
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>Embedded content (base64 in JSON).</summary>
    public byte[]? Data { get; init; }

    /// <summary>Serialised always: null when unset, base64 otherwise, as Go does for a nil/non-nil []byte.</summary>
    public byte[]? NewUnspecifiedField { get; init; }

    public static OciDescriptor Of(string mediaType, byte[] content) => new(mediaType, OciJson.Sha256(content), content.Length);
}

internal sealed record OciManifest(OciDescriptor Config, IReadOnlyList<OciDescriptor> Layers)
{
    public string? MediaType { get; init; }

    public string? ArtifactType { get; init; }

    public OciDescriptor? Subject { get; init; }

    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

internal sealed record OciIndex(IReadOnlyList<OciDescriptor> Manifests)
{
    public string? MediaType { get; init; }

    public string? ArtifactType { get; init; }

    public OciDescriptor? Subject { get; init; }

    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

internal static class OciJson
{
    private static readonly JsonWriterOptions Layout = new()
    {
        Indented = true,
        IndentCharacter = '\t',
        IndentSize = 1,
        // Media types contain '+', which the default encoder escapes; Go only escapes <, > and &.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Sha256(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>The image config (author, architecture, os, rootfs) as the suite generates it per workflow.</summary>
    public static byte[] Config(string author, string architecture, string os) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("author", author);
        w.WriteString("architecture", architecture);
        w.WriteString("os", os);
        w.WriteStartObject("rootfs");
        w.WriteString("type", "layers");
        w.WriteStartArray("diff_ids");
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    });

    public static byte[] Manifest(OciManifest manifest) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("schemaVersion", 2);
        OptionalString(w, "mediaType", manifest.MediaType);
        OptionalString(w, "artifactType", manifest.ArtifactType);
        w.WritePropertyName("config");
        Descriptor(w, manifest.Config);
        w.WriteStartArray("layers");
        foreach (var layer in manifest.Layers)
        {
            Descriptor(w, layer);
        }

        w.WriteEndArray();
        if (manifest.Subject is not null)
        {
            w.WritePropertyName("subject");
            Descriptor(w, manifest.Subject);
        }

        Annotations(w, manifest.Annotations);
        w.WriteEndObject();
    });

    public static byte[] Index(OciIndex index) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("schemaVersion", 2);
        OptionalString(w, "mediaType", index.MediaType);
        OptionalString(w, "artifactType", index.ArtifactType);
        w.WriteStartArray("manifests");
        foreach (var manifest in index.Manifests)
        {
            Descriptor(w, manifest);
        }

        w.WriteEndArray();
        if (index.Subject is not null)
        {
            w.WritePropertyName("subject");
            Descriptor(w, index.Subject);
        }

        Annotations(w, index.Annotations);
        w.WriteEndObject();
    });

    private static void Descriptor(Utf8JsonWriter w, OciDescriptor descriptor)
    {
        w.WriteStartObject();
        w.WriteString("mediaType", descriptor.MediaType);
        w.WriteString("digest", descriptor.Digest);
        w.WriteNumber("size", descriptor.Size);
        Annotations(w, descriptor.Annotations);
        if (descriptor.Data is { Length: > 0 })
        {
            w.WriteBase64String("data", descriptor.Data);
        }

        if (descriptor.NewUnspecifiedField is null)
        {
            w.WriteNull("newUnspecifiedField");
        }
        else
        {
            w.WriteBase64String("newUnspecifiedField", descriptor.NewUnspecifiedField);
        }

        w.WriteEndObject();
    }

    private static void Annotations(Utf8JsonWriter w, IReadOnlyDictionary<string, string>? annotations)
    {
        if (annotations is not { Count: > 0 })
        {
            return;
        }

        w.WriteStartObject("annotations");
        foreach (var (key, value) in annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            w.WriteString(key, value);
        }

        w.WriteEndObject();
    }

    private static void OptionalString(Utf8JsonWriter w, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            w.WriteString(name, value);
        }
    }

    private static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, Layout))
        {
            write(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }
}
