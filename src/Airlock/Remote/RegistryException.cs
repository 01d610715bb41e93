using System.Net;
using System.Text;
using Airlock.Distribution;

namespace Airlock.Remote;

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
}
