using System.Text.Json;
using System.Text.Json.Serialization;

namespace Airlock.Distribution;

/// <summary>One page of <c>/v2/&lt;name&gt;/tags/list</c>: <c>{"name":…,"tags":[…]}</c>.</summary>
public sealed record TagList
{
    [JsonPropertyName("name")]
    public string? Name { get; init; }

    [JsonPropertyName("tags")]
    public List<string>? Tags { get; init; }

    /// <summary>Writes a page as the registry serves it, without building the list.</summary>
    public static void Write(Utf8JsonWriter json, string name, IEnumerable<string> tags)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(tags);
        json.WriteStartObject();
        json.WriteString("name", name);
        WriteArray(json, "tags", tags);
        json.WriteEndObject();
    }

    /// <summary>Reads a page; null when the body is not one.</summary>
    public static TagList? Parse(ReadOnlySpan<byte> body) => JsonSerializer.Deserialize(body, DistributionJsonContext.Default.TagList);

    internal static void WriteArray(Utf8JsonWriter json, string property, IEnumerable<string> items)
    {
        json.WriteStartArray(property);
        foreach (var item in items)
        {
            json.WriteStringValue(item);
        }

        json.WriteEndArray();
    }
}

/// <summary>One page of <c>/v2/_catalog</c>: <c>{"repositories":[…]}</c>.</summary>
public sealed record CatalogPage
{
    [JsonPropertyName("repositories")]
    public List<string>? Repositories { get; init; }

    /// <summary>Writes a page as the registry serves it, without building the list.</summary>
    public static void Write(Utf8JsonWriter json, IEnumerable<string> repositories)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(repositories);
        json.WriteStartObject();
        TagList.WriteArray(json, "repositories", repositories);
        json.WriteEndObject();
    }

    /// <summary>Reads a page; null when the body is not one.</summary>
    public static CatalogPage? Parse(ReadOnlySpan<byte> body) => JsonSerializer.Deserialize(body, DistributionJsonContext.Default.CatalogPage);
}

/// <summary>
/// The token service's answer (the Docker token flow: <c>{"token","access_token","expires_in","issued_at"}</c>), as the
/// registry's <c>/token</c> writes it and the client reads it.
/// </summary>
public sealed record TokenResponse
{
    [JsonPropertyName("token")]
    public string? Token { get; init; }

    /// <summary>The OAuth2 name of the same token; clients take either.</summary>
    [JsonPropertyName("access_token")]
    public string? AccessToken { get; init; }

    /// <summary>Seconds the token is valid from issue.</summary>
    [JsonPropertyName("expires_in")]
    public int? ExpiresIn { get; init; }

    /// <summary>RFC 3339 UTC time of issue.</summary>
    [JsonPropertyName("issued_at")]
    public string? IssuedAt { get; init; }

    /// <summary>Reads an answer; throws <see cref="JsonException"/> when the body is not JSON.</summary>
    public static TokenResponse? Parse(ReadOnlySpan<byte> body) => JsonSerializer.Deserialize(body, DistributionJsonContext.Default.TokenResponse);

    public async Task WriteAsync(Stream output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        await JsonSerializer.SerializeAsync(output, this, DistributionJsonContext.Default.TokenResponse, cancellationToken).ConfigureAwait(false);
    }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ErrorBodyJson))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(TagList))]
[JsonSerializable(typeof(CatalogPage))]
[JsonSerializable(typeof(ApiInfo))]
[JsonSerializable(typeof(LoadReport))]
internal sealed partial class DistributionJsonContext : JsonSerializerContext
{
}
