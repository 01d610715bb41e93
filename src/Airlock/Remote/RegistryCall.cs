using System.Net;

namespace Airlock.Remote;

/// <summary>One logical request to a registry: what to send, which token scopes it needs, how to treat the answer.</summary>
internal sealed record RegistryCall
{
    public required string Registry { get; init; }

    public string? Repository { get; init; }

    /// <summary>Tag or digest the call is about, for error messages.</summary>
    public string? Reference { get; init; }

    public required HttpMethod Method { get; init; }

    /// <summary>Path and query relative to the registry's base address, or an absolute URL (upload locations, Link pages).</summary>
    public required string Target { get; init; }

    public IReadOnlyList<string> Scopes { get; init; } = [];

    public IReadOnlyList<string>? Accept { get; init; }

    /// <summary>Creates the body afresh per attempt; null for bodiless requests.</summary>
    public Func<HttpContent>? Content { get; init; }

    /// <summary>False for streamed upload bodies: sent once, never retried or re-sent after a 401.</summary>
    public bool Replayable { get; init; } = true;

    public long? RangeFrom { get; init; }

    /// <summary>A Range header passed through as given (the node mirror forwards containerd's); wins over <see cref="RangeFrom"/>.</summary>
    public System.Net.Http.Headers.RangeHeaderValue? Range { get; init; }

    /// <summary>An explicit Authorization header (token requests); bypasses the registry authenticator.</summary>
    public System.Net.Http.Headers.AuthenticationHeaderValue? Authorization { get; init; }

    /// <summary>False for requests to a token server: no registry challenge handling.</summary>
    public bool UseRegistryAuth { get; init; } = true;

    /// <summary>Reads the body into memory (up to <see cref="MaxBody"/>) inside the attempt, so a drop mid-body is retried.</summary>
    public bool BufferBody { get; init; }

    public int MaxBody { get; init; } = RegistryClient.MaxManifestSize;
}

/// <summary>A registry's answer; the body is in <see cref="Body"/> when buffered, else still in <see cref="Message"/>.</summary>
internal sealed class RegistryResponse : IDisposable
{
    public RegistryResponse(HttpResponseMessage message, byte[] body)
    {
        Message = message;
        Body = body;
    }

    public HttpResponseMessage Message { get; }

    public byte[] Body { get; }

    public HttpStatusCode Status => Message.StatusCode;

    public bool IsSuccess => Message.IsSuccessStatusCode;

    /// <summary>What to do about a refusal (for a 401: which credentials were missing or refused), added to its error.</summary>
    public string? Explanation { get; set; }

    public string? Header(string name) =>
        Message.Headers.TryGetValues(name, out var values) || Message.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault()
            : null;

    public void Dispose() => Message.Dispose();
}
