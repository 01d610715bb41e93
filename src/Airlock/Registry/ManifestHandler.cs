using System.Buffers;
using System.Security.Cryptography;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Distribution;
using Airlock.Oci;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry;

/// <summary><c>/v2/&lt;name&gt;/manifests/&lt;reference&gt;</c>: GET, HEAD, PUT, DELETE.</summary>
internal sealed class ManifestHandler(RegistryStorage storage, ManifestCache cache, RegistryMetrics metrics, int maxManifestBytes, ILogger logger)
{
    public async Task GetAsync(HttpContext context, OciRoute route, bool head)
    {
        var manifest = await LoadAsync(route, context.RequestAborted).ConfigureAwait(false);
        CheckAccept(context.Request.Headers.Accept, manifest.MediaType);

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        var headers = response.Headers;
        headers.ContentType = manifest.MediaType;
        headers.ContentLength = manifest.Content.Length;
        headers[RegistryHeaders.ContentDigest] = manifest.DigestText;
        if (!head)
        {
            metrics.AddBytesOut(manifest.Content.Length);
            await response.Body.WriteAsync(manifest.Content, context.RequestAborted).ConfigureAwait(false);
        }
    }

    public async Task PutAsync(HttpContext context, OciRoute route)
    {
        var ct = context.RequestAborted;
        var request = context.Request;
        if (request.ContentLength is { } declared && declared > maxManifestBytes)
        {
            throw new OciException(OciErrorCode.ManifestTooLarge, $"manifest of {declared} bytes exceeds the limit of {maxManifestBytes} bytes");
        }

        var body = await ReadBodyAsync(request.Body, maxManifestBytes, ct).ConfigureAwait(false);
        metrics.AddBytesIn(body.Length);
        ManifestDocument document;
        try
        {
            document = ManifestDocument.Parse(body, request.ContentType);
        }
        catch (ManifestFormatException ex)
        {
            throw new OciException(OciErrorCode.ManifestInvalid, ex.Message);
        }

        var digest = ComputeDigest(body, route.Digest?.Algorithm ?? Digest.Sha256Algorithm);
        if (route.Digest is { } claimed && claimed != digest)
        {
            throw new OciException(OciErrorCode.DigestInvalid, $"manifest digest is {digest}, not {claimed} as in the URL");
        }

        var repositories = storage.Repositories;
        using (await storage.Guard.EnterReferenceAsync(ct).ConfigureAwait(false))
        {
            foreach (var child in document.Children)
            {
                await CheckChildAsync(route.Name, child, document.IsIndex, ct).ConfigureAwait(false);
                storage.Guard.NoteReferenced(child.Digest);
            }

            storage.Guard.NoteReferenced(digest);
            await storage.Blobs.WriteAsync(body, digest, ct).ConfigureAwait(false);
            repositories.PutManifestRevision(route.Name, digest, document.MediaType);
            if (document.Subject is { } subject)
            {
                repositories.AddReferrer(route.Name, subject.Digest, new Descriptor
                {
                    MediaType = document.MediaType,
                    Digest = digest,
                    Size = body.Length,
                    ArtifactType = document.ArtifactType ?? (document.IsIndex ? null : document.Config?.MediaType),
                    Annotations = document.Annotations,
                });
            }

            if (route.Tag is { } tag)
            {
                repositories.SetTag(route.Name, tag, digest);
                cache.Invalidate(route.Name, tag);
            }
        }

        logger.LogDebug("Manifest {Digest} put in {Repository} as {Reference}", digest, route.Name, route.Reference);
        var response = context.Response;
        response.StatusCode = StatusCodes.Status201Created;
        response.Headers.Location = $"/v2/{route.Name}/manifests/{digest}";
        response.Headers[RegistryHeaders.ContentDigest] = digest.ToString();
        if (document.Subject is { } referred)
        {
            response.Headers[RegistryHeaders.Subject] = referred.Digest.ToString();
        }

        response.ContentLength = 0;
    }

    public async Task DeleteAsync(HttpContext context, OciRoute route)
    {
        var repositories = storage.Repositories;
        if (route.Tag is { } tag)
        {
            if (!repositories.DeleteTag(route.Name, tag))
            {
                throw new OciException(OciErrorCode.ManifestUnknown, $"tag \"{tag}\" is unknown in {route.Name}");
            }

            cache.Invalidate(route.Name, tag);
        }
        else
        {
            var digest = route.Digest!.Value;
            if (repositories.ManifestMediaType(route.Name, digest) is null)
            {
                throw new OciException(OciErrorCode.ManifestUnknown, $"manifest {digest} is unknown in {route.Name}");
            }

            var content = await ReadStoredAsync(digest, context.RequestAborted).ConfigureAwait(false);
            if (content is not null && TryParse(content) is { Subject: { } subject })
            {
                repositories.RemoveReferrer(route.Name, subject.Digest, digest);
            }

            foreach (var tagged in repositories.ListTags(route.Name) ?? [])
            {
                if (repositories.ResolveTag(route.Name, tagged) == digest)
                {
                    repositories.DeleteTag(route.Name, tagged);
                }
            }

            repositories.DeleteManifestRevision(route.Name, digest);
            cache.InvalidateRepository(route.Name);
        }

        logger.LogDebug("Manifest {Reference} deleted from {Repository}", route.Reference, route.Name);
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        context.Response.ContentLength = 0;
    }

    private async ValueTask<CachedManifest> LoadAsync(OciRoute route, CancellationToken cancellationToken)
    {
        if (cache.TryGet(route.Name, route.Reference, out var cached))
        {
            return cached;
        }

        var generation = cache.Generation;
        var repositories = storage.Repositories;
        var digest = route.Digest ?? repositories.ResolveTag(route.Name, route.Reference)
            ?? throw new OciException(OciErrorCode.ManifestUnknown, $"tag \"{route.Reference}\" is unknown in {route.Name}");
        var mediaType = repositories.ManifestMediaType(route.Name, digest)
            ?? throw new OciException(OciErrorCode.ManifestUnknown, $"manifest {digest} is unknown in {route.Name}");
        var content = await ReadStoredAsync(digest, cancellationToken).ConfigureAwait(false)
            ?? throw new OciException(OciErrorCode.ManifestUnknown, $"manifest {digest} content is missing");
        var manifest = new CachedManifest(content, mediaType, digest);
        cache.Add(route.Name, route.Reference, manifest, generation);
        return manifest;
    }

    private Task<byte[]?> ReadStoredAsync(Digest digest, CancellationToken cancellationToken) =>
        storage.Blobs.ReadSmallAsync(digest, int.MaxValue, cancellationToken);

    private async Task CheckChildAsync(string repository, Descriptor child, bool parentIsIndex, CancellationToken cancellationToken)
    {
        var repositories = storage.Repositories;
        if (parentIsIndex)
        {
            if (repositories.ManifestMediaType(repository, child.Digest) is null)
            {
                throw new OciException(OciErrorCode.ManifestBlobUnknown, $"index references manifest {child.Digest} that is not in {repository}");
            }

            return;
        }

        // Foreign layers live elsewhere (their urls); the registry never had them.
        if (child.Urls is { Count: > 0 })
        {
            return;
        }

        if (!repositories.HasBlobLink(repository, child.Digest) && repositories.ManifestMediaType(repository, child.Digest) is null)
        {
            throw new OciException(OciErrorCode.ManifestBlobUnknown, $"blob {child.Digest} is not in {repository}");
        }

        if (await storage.Blobs.SizeAsync(child.Digest, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new OciException(OciErrorCode.ManifestBlobUnknown, $"blob {child.Digest} content is missing");
        }
    }

    /// <summary>
    /// Serves the stored manifest unless the client's Accept list names manifest types, none of which is
    /// the stored one, and no wildcard — then 404 as distribution does, since converting is not possible.
    /// </summary>
    private static void CheckAccept(Microsoft.Extensions.Primitives.StringValues accept, string mediaType)
    {
        if (accept.Count == 0)
        {
            return;
        }

        var namesManifestType = false;
        foreach (var value in accept)
        {
            if (value is null)
            {
                continue;
            }

            if (value.Contains(mediaType, StringComparison.Ordinal) || value.Contains("*/*", StringComparison.Ordinal)
                || value.Contains("application/*", StringComparison.Ordinal))
            {
                return;
            }

            namesManifestType |= value.Contains("manifest", StringComparison.Ordinal) || value.Contains("image.index", StringComparison.Ordinal);
        }

        if (namesManifestType)
        {
            throw new OciException(OciErrorCode.ManifestUnknown, $"manifest is {mediaType}, which the Accept header does not allow");
        }
    }

    private static ManifestDocument? TryParse(byte[] content)
    {
        try
        {
            return ManifestDocument.Parse(content, null);
        }
        catch (ManifestFormatException)
        {
            return null;
        }
    }

    private static Digest ComputeDigest(byte[] body, string algorithm) => algorithm == Digest.Sha256Algorithm
        ? Digest.Sha256(body)
        : Digest.FromHash(algorithm, SHA512.HashData(body));

    /// <summary>Reads a manifest body, refusing more than <paramref name="limit"/> bytes.</summary>
    private static async Task<byte[]> ReadBodyAsync(Stream body, int limit, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await body.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                length += read;
                if (length > limit)
                {
                    throw new OciException(OciErrorCode.ManifestTooLarge, $"manifest exceeds the limit of {limit} bytes");
                }
            }

            return buffer.AsSpan(0, length).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
