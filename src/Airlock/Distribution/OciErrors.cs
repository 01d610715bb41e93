using Microsoft.AspNetCore.Http;

namespace Airlock.Distribution;

/// <summary>Every error the registry and the node mirror answer with; <see cref="OciErrorTable"/> gives each its status and spec code.</summary>
public enum OciErrorCode
{
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    ManifestTooLarge,
    NameInvalid,
    NameUnknown,
    TagInvalid,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    ReadOnly,
    TooManyRequests,
    RangeInvalid,
    NotFound,
    MethodNotAllowed,
    StorageFull,
    ProxiedRepository,
    UpstreamUnavailable,
    UpstreamInvalid,
    StoreUnavailable,
}

/// <summary>A request the registry refuses; written as <c>{"errors":[…]}</c> by the dispatcher only.</summary>
public sealed class OciException(OciErrorCode code, string? detail = null) : Exception(detail ?? OciErrorTable.Get(code).Message)
{
    public OciErrorCode Code { get; } = code;

    public string? Detail { get; } = detail;

    /// <summary>Extra response headers (Content-Range on a 416, WWW-Authenticate on a 401).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = [];
}

/// <summary>
/// The one table of error codes: HTTP status, the spec's code string and its message. Only code strings
/// the distribution spec defines are sent (clients and the conformance suite check them), so finer
/// distinctions live in the enum, the status and the detail.
/// </summary>
public static class OciErrorTable
{
    public readonly record struct Entry(int Status, string Code, string Message);

    private static readonly Entry[] Entries = Build();

    public static Entry Get(OciErrorCode code) => Entries[(int)code];

    private static Entry[] Build()
    {
        var entries = new Entry[Enum.GetValues<OciErrorCode>().Length];
        void Add(OciErrorCode code, int status, string spec, string message) => entries[(int)code] = new Entry(status, spec, message);

        Add(OciErrorCode.BlobUnknown, 404, "BLOB_UNKNOWN", "blob unknown to registry");
        Add(OciErrorCode.BlobUploadInvalid, 400, "BLOB_UPLOAD_INVALID", "blob upload invalid");
        Add(OciErrorCode.BlobUploadUnknown, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
        Add(OciErrorCode.DigestInvalid, 400, "DIGEST_INVALID", "provided digest did not match uploaded content");
        Add(OciErrorCode.ManifestBlobUnknown, 400, "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry");
        Add(OciErrorCode.ManifestInvalid, 400, "MANIFEST_INVALID", "manifest invalid");
        Add(OciErrorCode.ManifestUnknown, 404, "MANIFEST_UNKNOWN", "manifest unknown to registry");
        Add(OciErrorCode.ManifestTooLarge, 413, "SIZE_INVALID", "manifest is larger than the registry accepts");
        Add(OciErrorCode.NameInvalid, 400, "NAME_INVALID", "invalid repository name");
        Add(OciErrorCode.NameUnknown, 404, "NAME_UNKNOWN", "repository name not known to registry");
        Add(OciErrorCode.TagInvalid, 400, "MANIFEST_INVALID", "manifest tag is invalid");
        Add(OciErrorCode.SizeInvalid, 400, "SIZE_INVALID", "provided length did not match content length");
        Add(OciErrorCode.Unauthorized, 401, "UNAUTHORIZED", "authentication required");
        Add(OciErrorCode.Denied, 403, "DENIED", "requested access to the resource is denied");
        Add(OciErrorCode.Unsupported, 400, "UNSUPPORTED", "the operation is unsupported");
        Add(OciErrorCode.ReadOnly, 405, "UNSUPPORTED", "the registry is in read-only mode");
        Add(OciErrorCode.TooManyRequests, 429, "TOOMANYREQUESTS", "too many requests");
        Add(OciErrorCode.RangeInvalid, 416, "BLOB_UPLOAD_INVALID", "requested range not satisfiable");
        Add(OciErrorCode.NotFound, 404, "UNSUPPORTED", "no such endpoint");
        Add(OciErrorCode.MethodNotAllowed, 405, "UNSUPPORTED", "method not allowed on this endpoint");

        // The spec has no code for a full store; distribution's generic UNKNOWN with 507 tells clients and
        // operators what happened, while pulls keep being served.
        Add(OciErrorCode.StorageFull, 507, "UNKNOWN", "the registry's storage is full");

        // A node mirror or pull-through cache whose upstreams failed (refused, timed out, 5xx, or content that is
        // not what was asked for) is a gateway failure, so clients see a server-side error rather than "not
        // found", and containerd tries its next endpoint. Pushes to a pull-through repository are refused as
        // distribution's proxy mode does.
        Add(OciErrorCode.ProxiedRepository, 405, "UNSUPPORTED", "the repository is a pull-through cache; pushes and deletes are refused");
        Add(OciErrorCode.UpstreamUnavailable, 502, "UNKNOWN", "no upstream registry could be reached");
        Add(OciErrorCode.UpstreamInvalid, 502, "UNKNOWN", "the upstream registry served content that does not match its digest");

        // The store's backends (object storage, the metadata cluster) cannot be reached: nothing was changed, and the
        // same request works again once they are back. The spec has no code for it.
        Add(OciErrorCode.StoreUnavailable, 503, "UNKNOWN", "the registry's storage is unavailable; try again");
        return entries;
    }

    /// <summary>The single writer of error bodies.</summary>
    public static async Task WriteAsync(HttpContext context, OciException error)
    {
        var entry = Get(error.Code);
        var response = context.Response;
        response.StatusCode = entry.Status;
        foreach (var (name, value) in error.Headers)
        {
            response.Headers[name] = value;
        }

        response.ContentType = "application/json; charset=utf-8";
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        ErrorBody.Write(buffer, new RegistryError(entry.Code, entry.Message, error.Detail));
        response.ContentLength = buffer.WrittenCount;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
        }
    }
}
