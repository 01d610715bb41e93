using Airlock.Oci;

namespace Airlock.Distribution;

/// <summary>What a <c>/v2/…</c> path addresses.</summary>
public enum OciRouteKind
{
    Base,
    Catalog,
    Manifest,
    Blob,
    UploadStart,
    Upload,
    TagList,
    Referrers,
}

/// <summary>
/// The route grammar of the distribution API, both ways (distribution's <c>registry/api/v2</c>): the one parser of paths, <c>/v2/&lt;name&gt;/(manifests/&lt;ref&gt;|blobs/&lt;digest&gt;|
/// blobs/uploads/[&lt;id&gt;]|tags/list|referrers/&lt;digest&gt;)</c>, where the name has slashes. It reads the
/// raw request target, so dot segments and encoded slashes that a server would normalise away are seen
/// and refused instead of silently addressing another repository; and the builder of the same paths
/// (<see cref="Path"/>) for the client and the node mirror.
/// </summary>
public readonly record struct OciRoute(OciRouteKind Kind, string Name, string Reference, Digest? Digest)
{
    /// <summary><c>/v2/</c>, the API version check.</summary>
    public static OciRoute Base => new(OciRouteKind.Base, string.Empty, string.Empty, null);

    /// <summary><c>/v2/_catalog</c>.</summary>
    public static OciRoute Catalog => new(OciRouteKind.Catalog, string.Empty, string.Empty, null);

    /// <summary>The tag of a manifest route addressed by tag, else null.</summary>
    public string? Tag => Kind == OciRouteKind.Manifest && Digest is null ? Reference : null;

    /// <summary>
    /// What the route addresses within its repository: <c>manifests/&lt;ref&gt;</c>, <c>blobs/&lt;digest&gt;</c>,
    /// <c>blobs/uploads/</c>, <c>blobs/uploads/&lt;id&gt;</c>, <c>tags/list</c> or <c>referrers/&lt;digest&gt;</c>
    /// (<c>_catalog</c> for the catalog, empty for the base).
    /// </summary>
    public string Resource => Kind switch
    {
        OciRouteKind.Base => string.Empty,
        OciRouteKind.Catalog => "_catalog",
        OciRouteKind.Manifest => "manifests/" + Reference,
        OciRouteKind.Blob => "blobs/" + Reference,
        OciRouteKind.UploadStart => "blobs/uploads/",
        OciRouteKind.Upload => "blobs/uploads/" + Reference,
        OciRouteKind.TagList => "tags/list",
        OciRouteKind.Referrers => "referrers/" + Reference,
        _ => throw new InvalidOperationException($"route kind {Kind} has no path"),
    };

    /// <summary>The path of the route, <see cref="TryParse"/>'s inverse: <c>/v2/&lt;name&gt;/&lt;resource&gt;</c>.</summary>
    public string Path => Kind is OciRouteKind.Base or OciRouteKind.Catalog ? "/v2/" + Resource : $"/v2/{Name}/{Resource}";

    /// <summary><c>/v2/&lt;name&gt;/manifests/&lt;reference&gt;</c>, by tag or digest. Names and references are formatted as given.</summary>
    public static OciRoute ForManifest(string name, string reference) =>
        new(OciRouteKind.Manifest, name, reference, reference.Contains(':', StringComparison.Ordinal) && Oci.Digest.TryParse(reference, out var digest, out _) ? digest : null);

    /// <summary><c>/v2/&lt;name&gt;/blobs/&lt;digest&gt;</c>.</summary>
    public static OciRoute ForBlob(string name, Digest digest) => new(OciRouteKind.Blob, name, digest.ToString(), digest);

    /// <summary><c>/v2/&lt;name&gt;/blobs/uploads/</c>, where an upload starts.</summary>
    public static OciRoute ForUploadStart(string name) => new(OciRouteKind.UploadStart, name, string.Empty, null);

    /// <summary><c>/v2/&lt;name&gt;/tags/list</c>.</summary>
    public static OciRoute ForTagList(string name) => new(OciRouteKind.TagList, name, string.Empty, null);

    /// <summary><c>/v2/&lt;name&gt;/referrers/&lt;subject&gt;</c>.</summary>
    public static OciRoute ForReferrers(string name, Digest subject) => new(OciRouteKind.Referrers, name, subject.ToString(), subject);

    /// <summary>
    /// Parses <paramref name="rawPath"/> (the path of the request target, without query). Returns false when
    /// the path is not under <c>/v2</c>; throws <see cref="OciException"/> for a malformed /v2 path.
    /// </summary>
    public static bool TryParse(string rawPath, out OciRoute route)
    {
        route = default;
        var path = rawPath.AsSpan();
        if (!path.StartsWith("/v2", StringComparison.Ordinal) || (path.Length > 3 && path[3] != '/'))
        {
            return false;
        }

        if (path.Length <= 4)
        {
            route = Base;
            return true;
        }

        var rest = path[4..];
        if (rest.Contains('%'))
        {
            if (rest.Contains("%2f", StringComparison.OrdinalIgnoreCase) || rest.Contains("%2e", StringComparison.OrdinalIgnoreCase)
                || rest.Contains("%5c", StringComparison.OrdinalIgnoreCase))
            {
                throw new OciException(OciErrorCode.NameInvalid, "encoded '/', '.' or '\\' is not allowed in a repository path");
            }

            rest = Uri.UnescapeDataString(rest.ToString()).AsSpan();
        }

        if (rest.SequenceEqual("_catalog"))
        {
            route = Catalog;
            return true;
        }

        var lastSlash = rest.LastIndexOf('/');
        if (lastSlash <= 0)
        {
            throw new OciException(OciErrorCode.NotFound);
        }

        var last = rest[(lastSlash + 1)..];
        var head = rest[..lastSlash];
        var prevSlash = head.LastIndexOf('/');
        var previous = prevSlash < 0 ? head : head[(prevSlash + 1)..];
        var beforePrevious = prevSlash < 0 ? ReadOnlySpan<char>.Empty : head[..prevSlash];

        OciRouteKind routeKind;
        ReadOnlySpan<char> name;
        if (previous.SequenceEqual("uploads") && beforePrevious.EndsWith("/blobs", StringComparison.Ordinal))
        {
            routeKind = last.IsEmpty ? OciRouteKind.UploadStart : OciRouteKind.Upload;
            name = beforePrevious[..^"/blobs".Length];
        }
        else if (previous.SequenceEqual("blobs") && last.SequenceEqual("uploads"))
        {
            routeKind = OciRouteKind.UploadStart;
            name = beforePrevious;
            last = [];
        }
        else if (previous.SequenceEqual("tags") && last.SequenceEqual("list"))
        {
            routeKind = OciRouteKind.TagList;
            name = beforePrevious;
            last = [];
        }
        else if (previous.SequenceEqual("manifests"))
        {
            routeKind = OciRouteKind.Manifest;
            name = beforePrevious;
        }
        else if (previous.SequenceEqual("blobs"))
        {
            routeKind = OciRouteKind.Blob;
            name = beforePrevious;
        }
        else if (previous.SequenceEqual("referrers"))
        {
            routeKind = OciRouteKind.Referrers;
            name = beforePrevious;
        }
        else
        {
            throw new OciException(OciErrorCode.NotFound);
        }

        var nameText = name.ToString();
        if (!ImageReference.IsValidRepository(nameText))
        {
            throw new OciException(OciErrorCode.NameInvalid, $"repository name \"{nameText}\" is invalid");
        }

        var reference = last.ToString();
        Digest? digest = null;
        switch (routeKind)
        {
            case OciRouteKind.Manifest when reference.Contains(':', StringComparison.Ordinal):
            case OciRouteKind.Blob:
            case OciRouteKind.Referrers:
                digest = ParseDigest(reference);
                break;
            case OciRouteKind.Manifest when !ImageReference.IsValidTag(reference):
                throw new OciException(OciErrorCode.TagInvalid, $"tag \"{reference}\" is invalid");
            case OciRouteKind.Upload when !Guid.TryParseExact(reference, "D", out _):
                throw new OciException(OciErrorCode.BlobUploadUnknown, $"upload \"{reference}\" is unknown");
        }

        route = new OciRoute(routeKind, nameText, reference, digest);
        return true;
    }

    /// <summary>
    /// The path of a raw request target, as sent, without its query: the origin form (<c>/v2/…</c>) as it is,
    /// the absolute form (<c>http://host/v2/…</c>, which servers must accept) reduced to its path so it gets
    /// the same checks. Null for other forms (<c>*</c>, authority form).
    /// </summary>
    public static string? TargetPath(string rawTarget)
    {
        var query = rawTarget.IndexOf('?', StringComparison.Ordinal);
        var target = query >= 0 ? rawTarget[..query] : rawTarget;
        if (target.StartsWith('/'))
        {
            return target;
        }

        var scheme = target.IndexOf("://", StringComparison.Ordinal);
        if (scheme <= 0)
        {
            return null;
        }

        var path = target.IndexOf('/', scheme + 3);
        return path < 0 ? "/" : target[path..];
    }

    /// <summary>Parses a digest from a path or query; malformed and unsupported algorithms are DIGEST_INVALID.</summary>
    public static Digest ParseDigest(string? value)
    {
        if (!Oci.Digest.TryParse(value, out var digest, out var error))
        {
            throw new OciException(OciErrorCode.DigestInvalid, error);
        }

        if (!digest.IsSupported)
        {
            throw new OciException(OciErrorCode.DigestInvalid, $"digest algorithm \"{digest.Algorithm}\" is not supported");
        }

        return digest;
    }
}
