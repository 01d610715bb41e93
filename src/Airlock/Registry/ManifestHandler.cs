using System.Security.Cryptography;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry;

/// <summary><c>/v2/&lt;name&gt;/manifests/&lt;reference&gt;</c>: GET, HEAD, PUT, DELETE.</summary>
internal sealed class ManifestHandler(IRegistryStore storage, ManifestCache cache, RegistryMetrics metrics, int maxManifestBytes, ILogger logger)
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

        var body = await RequestBody.ReadAsync(request.Body, maxManifestBytes, ct).ConfigureAwait(false);
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

        CheckDescriptorDigests(document);
        var digest = ComputeDigest(body, route.Digest?.Algorithm ?? Digest.Sha256Algorithm);
        if (route.Digest is { } claimed && claimed != digest)
        {
            throw new OciException(OciErrorCode.DigestInvalid, $"manifest digest is {digest}, not {claimed} as in the URL");
        }

        var repositories = storage.Repositories;
        var lease = await storage.Guard.EnterReferenceAsync(ct).ConfigureAwait(false);
        await using (lease.ConfigureAwait(false))
        {
            foreach (var child in document.Children)
            {
                await CheckChildAsync(route.Name, child, document.IsIndex, ct).ConfigureAwait(false);
                await lease.NoteReferencedAsync(child.Digest, ct).ConfigureAwait(false);
            }

            await lease.NoteReferencedAsync(digest, ct).ConfigureAwait(false);
            await storage.Blobs.WriteAsync(body, digest, ct).ConfigureAwait(false);
            await repositories.PutManifestRevisionAsync(route.Name, digest, document.MediaType, ct).ConfigureAwait(false);
            if (document.Subject is { } subject)
            {
                await repositories.AddReferrerAsync(route.Name, subject.Digest, new Descriptor
                {
                    MediaType = document.MediaType,
                    Digest = digest,
                    Size = body.Length,
                    ArtifactType = document.ArtifactType ?? (document.IsIndex ? null : document.Config?.MediaType),
                    Annotations = document.Annotations,
                }, ct).ConfigureAwait(false);
            }

            if (route.Tag is { } tag)
            {
                await repositories.SetTagAsync(route.Name, tag, digest, ct).ConfigureAwait(false);
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
        var ct = context.RequestAborted;
        var repositories = storage.Repositories;
        if (route.Tag is { } tag)
        {
            if (!await repositories.DeleteTagAsync(route.Name, tag, ct).ConfigureAwait(false))
            {
                throw new OciException(OciErrorCode.ManifestUnknown, $"tag \"{tag}\" is unknown in {route.Name}");
            }

            cache.Invalidate(route.Name, tag);
        }
        else
        {
            var digest = route.Digest!.Value;
            if (await repositories.ManifestMediaTypeAsync(route.Name, digest, ct).ConfigureAwait(false) is null)
            {
                throw new OciException(OciErrorCode.ManifestUnknown, $"manifest {digest} is unknown in {route.Name}");
            }

            var content = await ReadStoredAsync(digest, ct).ConfigureAwait(false);
            if (content is not null && TryParse(content) is { Subject: { } subject })
            {
                await repositories.RemoveReferrerAsync(route.Name, subject.Digest, digest, ct).ConfigureAwait(false);
            }

            var tags = await repositories.ListTagsAsync(route.Name, null, int.MaxValue, ct).ConfigureAwait(false);
            foreach (var tagged in tags?.Names ?? [])
            {
                if (await repositories.ResolveTagAsync(route.Name, tagged, ct).ConfigureAwait(false) == digest)
                {
                    await repositories.DeleteTagAsync(route.Name, tagged, ct).ConfigureAwait(false);
                }
            }

            await repositories.DeleteManifestRevisionAsync(route.Name, digest, ct).ConfigureAwait(false);
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

        // A store replicas share (the entries above are off for it): one read says whether the repository changed since
        // this replica loaded the entry. Null for the filesystem store, whose entries above are dropped by its writers.
        var version = await repositories.ChangeVersionAsync(route.Name, cancellationToken).ConfigureAwait(false);
        if (version is { } current && cache.TryGetAt(route.Name, route.Reference, current, out cached))
        {
            return cached;
        }

        var digest = route.Digest ?? await repositories.ResolveTagAsync(route.Name, route.Reference, cancellationToken).ConfigureAwait(false)
            ?? throw new OciException(OciErrorCode.ManifestUnknown, $"tag \"{route.Reference}\" is unknown in {route.Name}");
        var mediaType = await repositories.ManifestMediaTypeAsync(route.Name, digest, cancellationToken).ConfigureAwait(false)
            ?? throw new OciException(OciErrorCode.ManifestUnknown, $"manifest {digest} is unknown in {route.Name}");
        var content = await ReadStoredAsync(digest, cancellationToken).ConfigureAwait(false)
            ?? throw new OciException(OciErrorCode.ManifestUnknown, $"manifest {digest} content is missing");
        var manifest = new CachedManifest(content, mediaType, digest);
        if (version is { } loadedAt)
        {
            cache.AddAt(route.Name, route.Reference, loadedAt, manifest);
        }
        else
        {
            cache.Add(route.Name, route.Reference, manifest, generation);
        }

        return manifest;
    }

    private Task<byte[]?> ReadStoredAsync(Digest digest, CancellationToken cancellationToken) =>
        storage.Blobs.ReadSmallAsync(digest, int.MaxValue, cancellationToken);

    private async Task CheckChildAsync(string repository, Descriptor child, bool parentIsIndex, CancellationToken cancellationToken)
    {
        var repositories = storage.Repositories;
        if (parentIsIndex)
        {
            if (await repositories.ManifestMediaTypeAsync(repository, child.Digest, cancellationToken).ConfigureAwait(false) is null)
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

        if (await repositories.GetBlobLinkAsync(repository, child.Digest, cancellationToken).ConfigureAwait(false) is null
            && await repositories.ManifestMediaTypeAsync(repository, child.Digest, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new OciException(OciErrorCode.ManifestBlobUnknown, $"blob {child.Digest} is not in {repository}");
        }

        if (await storage.Blobs.SizeAsync(child.Digest, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new OciException(OciErrorCode.ManifestBlobUnknown, $"blob {child.Digest} content is missing");
        }
    }

    /// <summary>
    /// Refuses, before anything is written, a descriptor whose digest the store cannot hold: a well-formed digest
    /// of an unregistered algorithm parses (it may be any length), but it has no place under <c>blobs/</c> or
    /// <c>_referrers/</c>, and failing there would leave the manifest half-stored.
    /// </summary>
    private static void CheckDescriptorDigests(ManifestDocument document)
    {
        if (document.Subject is { Digest.IsSupported: false } subject)
        {
            throw Unsupported("subject", subject.Digest);
        }

        if (document.Config is { Digest.IsSupported: false } config)
        {
            throw Unsupported("config", config.Digest);
        }

        var children = document.IsIndex ? document.Manifests : document.Layers;
        for (var i = 0; i < children.Count; i++)
        {
            if (!children[i].Digest.IsSupported)
            {
                throw Unsupported($"{(document.IsIndex ? "manifests" : "layers")}[{i}]", children[i].Digest);
            }
        }

        static OciException Unsupported(string where, Digest digest) => new(OciErrorCode.DigestInvalid,
            $"{where} digest uses algorithm \"{digest.Algorithm}\", which is not supported (sha256 and sha512 are)");
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
}
