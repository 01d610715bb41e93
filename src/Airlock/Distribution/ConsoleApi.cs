using System.Text.Json.Serialization;

namespace Airlock.Distribution;

/// <summary>
/// The parts of Airlock's JSON API (<c>/api/v1/…</c>, docs/api.md) that both the registry and Airlock's own
/// client speak: how a client recognises an Airlock registry, and the record <c>airlock images load</c> posts.
/// </summary>
public static class ConsoleApi
{
    public const string Root = "/api/v1";

    /// <summary>What <c>GET /api/v1</c> answers in <see cref="ApiInfo.Product"/>: how a client knows the registry is Airlock.</summary>
    public const string Product = "airlock";

    public const string Bundles = Root + "/bundles";

    /// <summary>The largest load record body the registry accepts.</summary>
    public const int MaxLoadRecordBytes = 4 << 20;

    /// <summary>The most images one load record may name.</summary>
    public const int MaxLoadRecordImages = 10_000;
}

/// <summary><c>GET /api/v1</c>: which registry this is, who is asking and what the console may show them.</summary>
public sealed record ApiInfo(
    [property: JsonPropertyName("product")] string Product,
    [property: JsonPropertyName("api")] string Api,
    [property: JsonPropertyName("version")] string Version,
    [property: JsonPropertyName("user")] string? User,
    [property: JsonPropertyName("features")] ApiFeatures Features);

/// <summary>Which of the console's pages have data for the asking user.</summary>
public sealed record ApiFeatures(
    [property: JsonPropertyName("storage")] bool Storage,
    [property: JsonPropertyName("cluster")] bool Cluster,
    [property: JsonPropertyName("readOnly")] bool ReadOnly);

/// <summary>One image an <c>airlock images load</c> pushed: where it went and where it came from.</summary>
public sealed record LoadedImage(
    [property: JsonPropertyName("repository")] string Repository,
    [property: JsonPropertyName("tag")] string? Tag,
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("mediaType")] string MediaType,
    [property: JsonPropertyName("source")] string? Source);

/// <summary><c>POST /api/v1/bundles</c>: the archive file loaded (its name, not its path) and the images it brought.</summary>
public sealed record LoadReport(
    [property: JsonPropertyName("file")] string File,
    [property: JsonPropertyName("images")] IReadOnlyList<LoadedImage> Images);
