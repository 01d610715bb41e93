using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Airlock.Remote;

/// <summary>One entry of an OCI error body <c>{"errors":[{"code":…,"message":…,"detail":…}]}</c>.</summary>
public sealed record RegistryError(string Code, string? Message, string? Detail);

/// <summary>
/// A registry refused or failed a request. Names the registry, repository and tag/digest it was about, the
/// HTTP status and the OCI error code (<c>MANIFEST_UNKNOWN</c>, <c>UNAUTHORIZED</c>, <c>DENIED</c>, …).
/// </summary>
public sealed class RegistryException : Exception
{
    public RegistryException(string registry, string? repository, string? reference, HttpStatusCode? statusCode,
        IReadOnlyList<RegistryError> errors, string? detail = null, Exception? inner = null)
        : base(Describe(registry, repository, reference, statusCode, errors, detail), inner)
    {
        Registry = registry;
        Repository = repository;
        Reference = reference;
        StatusCode = statusCode;
        Errors = errors;
    }

    public string Registry { get; }

    public string? Repository { get; }

    /// <summary>The tag or digest the request was about, if any.</summary>
    public string? Reference { get; }

    /// <summary>Null when no HTTP response was received (e.g. the connection kept failing).</summary>
    public HttpStatusCode? StatusCode { get; }

    public IReadOnlyList<RegistryError> Errors { get; }

    /// <summary>The first OCI error code, or one derived from the status when the body had none (401 → UNAUTHORIZED).</summary>
    public string? Code => Errors.Count > 0 ? Errors[0].Code : StatusCode switch
    {
        HttpStatusCode.Unauthorized => "UNAUTHORIZED",
        HttpStatusCode.Forbidden => "DENIED",
        HttpStatusCode.TooManyRequests => "TOOMANYREQUESTS",
        _ => null,
    };

    private static string Describe(string registry, string? repository, string? reference, HttpStatusCode? status,
        IReadOnlyList<RegistryError> errors, string? detail)
    {
        var text = new StringBuilder("registry ").Append(registry);
        if (repository is not null)
        {
            text.Append(", repository ").Append(repository);
        }

        if (reference is not null)
        {
            text.Append(", ").Append(reference);
        }

        text.Append(": ");
        if (status is { } code)
        {
            text.Append((int)code).Append(' ').Append(code);
        }

        foreach (var error in errors)
        {
            text.Append(' ').Append(error.Code);
            if (!string.IsNullOrEmpty(error.Message))
            {
                text.Append(" (").Append(error.Message).Append(')');
            }
        }

        if (errors.Count == 0 && status == HttpStatusCode.Unauthorized)
        {
            text.Append(" UNAUTHORIZED");
        }

        if (!string.IsNullOrEmpty(detail))
        {
            text.Append(status is null && errors.Count == 0 ? string.Empty : ": ").Append(detail);
        }

        return text.ToString();
    }

    /// <summary>Reads an OCI error body; anything else (HTML, empty, huge) yields no entries.</summary>
    internal static IReadOnlyList<RegistryError> ParseErrors(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return [];
        }

        try
        {
            var parsed = JsonSerializer.Deserialize(body, RemoteJsonContext.Default.ErrorBody);
            if (parsed?.Errors is null)
            {
                return [];
            }

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

internal sealed record ErrorBody
{
    [JsonPropertyName("errors")]
    public List<ErrorEntry>? Errors { get; init; }
}

internal sealed record ErrorEntry
{
    [JsonPropertyName("code")]
    public string? Code { get; init; }

    [JsonPropertyName("message")]
    public string? Message { get; init; }

    [JsonPropertyName("detail")]
    public JsonElement Detail { get; init; }
}

internal sealed record TokenResponse
{
    [JsonPropertyName("token")]
    public string? Token { get; init; }

    [JsonPropertyName("access_token")]
    public string? AccessToken { get; init; }

    [JsonPropertyName("expires_in")]
    public int? ExpiresIn { get; init; }
}

internal sealed record TagList
{
    [JsonPropertyName("name")]
    public string? Name { get; init; }

    [JsonPropertyName("tags")]
    public List<string>? Tags { get; init; }
}

internal sealed record CatalogPage
{
    [JsonPropertyName("repositories")]
    public List<string>? Repositories { get; init; }
}

[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(TokenResponse))]
[JsonSerializable(typeof(TagList))]
[JsonSerializable(typeof(CatalogPage))]
internal sealed partial class RemoteJsonContext : JsonSerializerContext
{
}
