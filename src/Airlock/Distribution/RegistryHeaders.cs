using System.Globalization;
using Microsoft.Extensions.Primitives;

namespace Airlock.Distribution;

/// <summary>Header names and constant values of the distribution API, allocated once.</summary>
internal static class RegistryHeaders
{
    public const string ApiVersion = "Docker-Distribution-API-Version";
    public const string ContentDigest = "Docker-Content-Digest";
    public const string UploadUuid = "Docker-Upload-UUID";
    public const string Subject = "OCI-Subject";
    public const string FiltersApplied = "OCI-Filters-Applied";

    public static readonly StringValues ApiVersionValue = new("registry/2.0");
    public static readonly StringValues OctetStream = new("application/octet-stream");
    public static readonly StringValues Bytes = new("bytes");
    public static readonly StringValues Json = new("application/json");

    /// <summary>The <c>Range</c> value of an upload holding <paramref name="length"/> bytes (distribution writes 0-0 when empty).</summary>
    public static string UploadRange(long length) =>
        string.Create(CultureInfo.InvariantCulture, $"0-{Math.Max(0, length - 1)}");
}
