using System.Globalization;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Distribution;
using Airlock.Oci;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry;

/// <summary>
/// <c>/v2/&lt;name&gt;/blobs/uploads/[&lt;id&gt;]</c>: monolithic and chunked pushes and cross-repository
/// mounts. Bodies stream into a <see cref="BlobIngest"/>; commits and links happen under the garbage
/// collection guard, so a sweep never deletes a blob between its commit and its link.
/// </summary>
internal sealed class UploadHandler(RegistryStorage storage, RegistryMetrics metrics, ILogger logger)
{
    public async Task StartAsync(HttpContext context, OciRoute route)
    {
        var ct = context.RequestAborted;
        var query = context.Request.Query;
        var mount = query["mount"].ToString();
        if (mount.Length > 0)
        {
            var digest = OciRoute.ParseDigest(mount);
            var from = query["from"].ToString();
            if (from.Length > 0 && ImageReference.IsValidRepository(from) && await TryMountAsync(route.Name, from, digest, ct).ConfigureAwait(false))
            {
                logger.LogDebug("Blob {Digest} mounted from {Source} into {Repository}", digest, from, route.Name);
                Created(context.Response, route.Name, digest);
                return;
            }
        }

        var single = query["digest"].ToString();
        if (single.Length > 0)
        {
            var expected = OciRoute.ParseDigest(single);
            Directory.CreateDirectory(storage.Layout.IngestDirectory);
            var ingest = BlobIngest.Start(storage.Layout.IngestFile());
            try
            {
                metrics.AddBytesIn(await ingest.CopyFromAsync(context.Request.Body, ct).ConfigureAwait(false));
                CheckLength(context.Request, ingest.Length);
            }
            catch
            {
                await ingest.AbortAsync().ConfigureAwait(false);
                await ingest.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            await CommitAndLinkAsync(ingest, route.Name, expected, ct).ConfigureAwait(false);
            Created(context.Response, route.Name, expected);
            return;
        }

        var id = storage.Uploads.Create(route.Name);
        var response = context.Response;
        response.StatusCode = StatusCodes.Status202Accepted;
        SessionHeaders(response, route.Name, id, 0);
    }

    public async Task PatchAsync(HttpContext context, OciRoute route)
    {
        using var lease = await AcquireAsync(route, context.RequestAborted).ConfigureAwait(false);
        await AppendAsync(context, lease).ConfigureAwait(false);
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        SessionHeaders(context.Response, route.Name, lease.Id, lease.Ingest.Length);
    }

    public async Task PutAsync(HttpContext context, OciRoute route)
    {
        var ct = context.RequestAborted;
        var digestText = context.Request.Query["digest"].ToString();
        if (digestText.Length == 0)
        {
            throw new OciException(OciErrorCode.DigestInvalid, "the digest query parameter is required to finish an upload");
        }

        var expected = OciRoute.ParseDigest(digestText);
        using var lease = await AcquireAsync(route, ct).ConfigureAwait(false);
        await AppendAsync(context, lease).ConfigureAwait(false);
        try
        {
            await CommitAndLinkAsync(lease.TakeIngest(), route.Name, expected, ct).ConfigureAwait(false);
        }
        finally
        {
            await lease.CompleteAsync().ConfigureAwait(false);
        }

        Created(context.Response, route.Name, expected);
    }

    public Task StatusAsync(HttpContext context, OciRoute route)
    {
        if (storage.Uploads.Find(route.Reference) is not { } state || state.Repository != route.Name)
        {
            throw new OciException(OciErrorCode.BlobUploadUnknown, $"upload {route.Reference} is unknown in {route.Name}");
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
        SessionHeaders(context.Response, route.Name, route.Reference, storage.Uploads.Length(route.Reference));
        return Task.CompletedTask;
    }

    public async Task CancelAsync(HttpContext context, OciRoute route)
    {
        using (await AcquireAsync(route, context.RequestAborted).ConfigureAwait(false))
        {
            await storage.Uploads.DeleteAsync(route.Reference).ConfigureAwait(false);
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
        context.Response.ContentLength = 0;
    }

    private async Task<UploadSessionStore.Lease> AcquireAsync(OciRoute route, CancellationToken cancellationToken)
    {
        if (storage.Uploads.Find(route.Reference) is not { } state || state.Repository != route.Name
            || await storage.Uploads.AcquireAsync(route.Reference, cancellationToken).ConfigureAwait(false) is not { } lease)
        {
            throw new OciException(OciErrorCode.BlobUploadUnknown, $"upload {route.Reference} is unknown in {route.Name}");
        }

        return lease;
    }

    /// <summary>Appends the request body; a Content-Range must continue exactly where the upload stands.</summary>
    private async Task AppendAsync(HttpContext context, UploadSessionStore.Lease lease)
    {
        var request = context.Request;
        var ingest = lease.Ingest;
        var contentRange = request.Headers.ContentRange.ToString();
        if (contentRange.Length > 0)
        {
            if (!TryParseContentRange(contentRange, out var start, out var end))
            {
                throw new OciException(OciErrorCode.BlobUploadInvalid, $"Content-Range \"{contentRange}\" is not of the form <start>-<end>");
            }

            if (start != ingest.Length || (request.ContentLength is { } length && length != end - start + 1))
            {
                throw new OciException(OciErrorCode.RangeInvalid, $"chunk {start}-{end} does not continue the upload, which holds {ingest.Length} bytes")
                {
                    Headers =
                    [
                        KeyValuePair.Create("Location", UploadLocation(context.Request.Path.Value!, lease.Id)),
                        KeyValuePair.Create("Range", RegistryHeaders.UploadRange(ingest.Length)),
                        KeyValuePair.Create(RegistryHeaders.UploadUuid, lease.Id),
                    ],
                };
            }
        }

        try
        {
            var before = ingest.Length;
            metrics.AddBytesIn(await ingest.CopyFromAsync(request.Body, context.RequestAborted).ConfigureAwait(false));
            CheckLength(request, ingest.Length - before);
        }
        catch (Exception ex) when (ex is not OciException)
        {
            await lease.ResetAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<bool> TryMountAsync(string repository, string source, Digest digest, CancellationToken cancellationToken)
    {
        if (!storage.Repositories.HasBlobLink(source, digest))
        {
            return false;
        }

        using (await storage.Guard.EnterReferenceAsync(cancellationToken).ConfigureAwait(false))
        {
            if (await storage.Blobs.SizeAsync(digest, cancellationToken).ConfigureAwait(false) is null)
            {
                return false;
            }

            storage.Guard.NoteReferenced(digest);
            storage.Blobs.Touch(digest);
            storage.Repositories.LinkBlob(repository, digest);
        }

        return true;
    }

    private async Task CommitAndLinkAsync(BlobIngest ingest, string repository, Digest expected, CancellationToken cancellationToken)
    {
        GarbageCollectionGuard.Lease lease;
        try
        {
            lease = await storage.Guard.EnterReferenceAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await ingest.AbortAsync().ConfigureAwait(false);
            await ingest.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        using (lease)
        {
            try
            {
                await storage.Blobs.CommitAsync(ingest, expected, cancellationToken).ConfigureAwait(false);
            }
            catch (DigestMismatchException ex)
            {
                throw new OciException(OciErrorCode.DigestInvalid, ex.Message);
            }

            storage.Guard.NoteReferenced(expected);
            storage.Repositories.LinkBlob(repository, expected);
        }

        logger.LogDebug("Blob {Digest} pushed to {Repository}", expected, repository);
    }

    private static void CheckLength(HttpRequest request, long received)
    {
        if (request.ContentLength is { } declared && declared != received)
        {
            throw new OciException(OciErrorCode.SizeInvalid, $"received {received} bytes, Content-Length said {declared}");
        }
    }

    private static void Created(HttpResponse response, string repository, Digest digest)
    {
        response.StatusCode = StatusCodes.Status201Created;
        response.Headers.Location = $"/v2/{repository}/blobs/{digest}";
        response.Headers[RegistryHeaders.ContentDigest] = digest.ToString();
        response.ContentLength = 0;
    }

    private static void SessionHeaders(HttpResponse response, string repository, string id, long length)
    {
        response.Headers.Location = $"/v2/{repository}/blobs/uploads/{id}";
        response.Headers[RegistryHeaders.UploadUuid] = id;
        response.Headers.Range = RegistryHeaders.UploadRange(length);
        response.ContentLength = 0;
    }

    private static string UploadLocation(string path, string id) => path.EndsWith(id, StringComparison.Ordinal) ? path : path.TrimEnd('/') + "/" + id;

    private static bool TryParseContentRange(string value, out long start, out long end)
    {
        start = end = 0;
        var text = value.AsSpan().Trim();
        if (text.StartsWith("bytes ", StringComparison.OrdinalIgnoreCase))
        {
            text = text[6..];
        }
        else if (text.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase))
        {
            text = text[6..];
        }

        var slash = text.IndexOf('/');
        if (slash >= 0)
        {
            text = text[..slash];
        }

        var dash = text.IndexOf('-');
        return dash > 0
            && long.TryParse(text[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out start)
            && long.TryParse(text[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out end)
            && end >= start;
    }
}
