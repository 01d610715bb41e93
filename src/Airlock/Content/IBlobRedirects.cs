using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// A blob store whose blobs a client may fetch straight from where they are stored (a presigned object-store URL), so
/// the bytes skip the registry. The registry answers a blob GET with a 307 to the URL when one is given.
/// </summary>
public interface IBlobRedirects
{
    /// <summary>A time-limited URL that GETs the stored blob, or null to serve it through the registry.</summary>
    ValueTask<Uri?> RedirectAsync(Digest digest, CancellationToken cancellationToken);
}
