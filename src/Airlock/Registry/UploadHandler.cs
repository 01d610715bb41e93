using System.Globalization;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;
using Airlock.Registry.PullThrough;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry;

/// <summary>
/// <c>/v2/&lt;name&gt;/blobs/uploads/[&lt;id&gt;]</c>: monolithic and chunked pushes and cross-repository
/// mounts. Bodies stream into the store's <see cref="IBlobWriter"/> or an <see cref="IUploadSession"/>; commits and
/// links happen under a reference lease of the store's garbage collection guard, so a sweep never deletes a blob
/// between its commit and its link.
/// </summary>
/// <remarks>
/// A mount never carries content out of a repository only authenticated clients may read (a private
/// upstream's cache, <see cref="PrivateRepositories"/>) into one anonymous clients may read: anyone allowed to
/// read the cache and push elsewhere could publish it that way. Such a mount becomes an ordinary upload
/// (202 with a Location, as the spec allows), which the client completes only by sending the content.
/// </remarks>
internal sealed class UploadHandler(IRegistryStore storage, RegistryMetrics metrics, PrivateRepositories privateRepositories, ILogger logger)
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
            if (from.Length > 0 && ImageReference.IsValidRepository(from) && !CarriesOutPrivateContent(from, route.Name, digest)
                && await TryMountAsync(route.Name, from, digest, ct).ConfigureAwait(false))
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
            await PushWholeAsync(context.Request, route.Name, expected, ct).ConfigureAwait(false);
            Created(context.Response, route.Name, expected);
            return;
        }

        var id = await storage.Uploads.CreateAsync(route.Name, ct).ConfigureAwait(false);
        var response = context.Response;
        response.StatusCode = StatusCodes.Status202Accepted;
        SessionHeaders(response, route.Name, id, 0);
    }

    public async Task PatchAsync(HttpContext context, OciRoute route)
    {
        var session = await OpenAsync(route, context.RequestAborted).ConfigureAwait(false);
        await using (session.ConfigureAwait(false))
        {
            await AppendAsync(context, session).ConfigureAwait(false);
            context.Response.StatusCode = StatusCodes.Status202Accepted;
            SessionHeaders(context.Response, route.Name, session.Id, session.Length);
        }
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
        var session = await OpenAsync(route, ct).ConfigureAwait(false);
        await using (session.ConfigureAwait(false))
        {
            if (session.Length == 0)
            {
                // POST then one PUT with the whole blob (how most clients push): a monolithic push, whose digest is
                // known before its bytes, so the store may write them in place (S3: no copy at the commit).
                CheckRange(context, session);
                try
                {
                    await PushWholeAsync(context.Request, route.Name, expected, ct).ConfigureAwait(false);
                }
                catch (OciException ex) when (ex.Code == OciErrorCode.DigestInvalid)
                {
                    await session.CancelAsync().ConfigureAwait(false);
                    throw;
                }

                await session.CancelAsync().ConfigureAwait(false);
            }
            else
            {
                await AppendAsync(context, session).ConfigureAwait(false);

                // The session ends whatever the outcome (a wrong digest is DIGEST_INVALID and the session is gone).
                await CommitAndLinkAsync(session.CommitAsync, route.Name, expected, ct).ConfigureAwait(false);
            }
        }

        Created(context.Response, route.Name, expected);
    }

    public async Task StatusAsync(HttpContext context, OciRoute route)
    {
        if (await storage.Uploads.FindAsync(route.Reference, context.RequestAborted).ConfigureAwait(false) is not { } session || session.Repository != route.Name)
        {
            throw new OciException(OciErrorCode.BlobUploadUnknown, $"upload {route.Reference} is unknown in {route.Name}");
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
        SessionHeaders(context.Response, route.Name, route.Reference, session.Length);
    }

    public async Task CancelAsync(HttpContext context, OciRoute route)
    {
        var session = await OpenAsync(route, context.RequestAborted).ConfigureAwait(false);
        await using (session.ConfigureAwait(false))
        {
            await session.CancelAsync().ConfigureAwait(false);
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
        context.Response.ContentLength = 0;
    }

    /// <summary>Takes the session for this request (waiting for one in flight); a session of another repository is unknown here.</summary>
    private async Task<IUploadSession> OpenAsync(OciRoute route, CancellationToken cancellationToken)
    {
        if (await storage.Uploads.FindAsync(route.Reference, cancellationToken).ConfigureAwait(false) is not { } found || found.Repository != route.Name
            || await storage.Uploads.OpenAsync(route.Reference, cancellationToken).ConfigureAwait(false) is not { } session)
        {
            throw new OciException(OciErrorCode.BlobUploadUnknown, $"upload {route.Reference} is unknown in {route.Name}");
        }

        return session;
    }

    /// <summary>Streams a whole blob announced as <paramref name="expected"/> into the store, then commits and links it.</summary>
    private async Task PushWholeAsync(HttpRequest request, string repository, Digest expected, CancellationToken cancellationToken)
    {
        var writer = await storage.Blobs.BeginWriteAsync(expected, cancellationToken).ConfigureAwait(false);
        await using (writer.ConfigureAwait(false))
        {
            metrics.AddBytesIn(await writer.CopyFromAsync(request.Body, cancellationToken).ConfigureAwait(false));
            CheckLength(request, writer.Length);
            await CommitAndLinkAsync(writer.CommitAsync, repository, expected, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Appends the request body; a Content-Range must continue exactly where the upload stands.</summary>
    private async Task AppendAsync(HttpContext context, IUploadSession session)
    {
        CheckRange(context, session);
        var appended = await session.AppendAsync(context.Request.Body, context.RequestAborted).ConfigureAwait(false);
        metrics.AddBytesIn(appended);
        CheckLength(context.Request, appended);
    }

    /// <summary>A Content-Range, when given, must continue exactly where the upload stands.</summary>
    private static void CheckRange(HttpContext context, IUploadSession session)
    {
        var request = context.Request;
        var contentRange = request.Headers.ContentRange.ToString();
        if (contentRange.Length > 0)
        {
            if (!TryParseContentRange(contentRange, out var start, out var end))
            {
                throw new OciException(OciErrorCode.BlobUploadInvalid, $"Content-Range \"{contentRange}\" is not of the form <start>-<end>");
            }

            if (start != session.Length || (request.ContentLength is { } length && length != end - start + 1))
            {
                throw new OciException(OciErrorCode.RangeInvalid, $"chunk {start}-{end} does not continue the upload, which holds {session.Length} bytes")
                {
                    Headers =
                    [
                        KeyValuePair.Create("Location", UploadLocation(context.Request.Path.Value!, session.Id)),
                        KeyValuePair.Create("Range", RegistryHeaders.UploadRange(session.Length)),
                        KeyValuePair.Create(RegistryHeaders.UploadUuid, session.Id),
                    ],
                };
            }
        }
    }

    private bool CarriesOutPrivateContent(string source, string repository, Digest digest)
    {
        if (!privateRepositories.Contains(source) || privateRepositories.Contains(repository))
        {
            return false;
        }

        logger.LogInformation("Blob {Digest} not mounted from {Source} into {Repository}: the source is for authenticated clients only; an upload is opened instead",
            digest, source, repository);
        return true;
    }

    private async Task<bool> TryMountAsync(string repository, string source, Digest digest, CancellationToken cancellationToken)
    {
        if (await storage.Repositories.GetBlobLinkAsync(source, digest, cancellationToken).ConfigureAwait(false) is null)
        {
            return false;
        }

        var lease = await storage.Guard.EnterReferenceAsync(cancellationToken).ConfigureAwait(false);
        await using (lease.ConfigureAwait(false))
        {
            if (await storage.Blobs.StatAsync(digest, cancellationToken).ConfigureAwait(false) is null)
            {
                return false;
            }

            await lease.NoteReferencedAsync(digest, cancellationToken).ConfigureAwait(false);
            await storage.Blobs.TouchAsync(digest, cancellationToken).ConfigureAwait(false);
            await storage.Repositories.LinkBlobAsync(repository, digest, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>Commits (a writer's or a session's bytes) and links the blob, holding a reference lease.</summary>
    private async Task CommitAndLinkAsync(Func<Digest, CancellationToken, Task<Digest>> commit, string repository, Digest expected, CancellationToken cancellationToken)
    {
        var lease = await storage.Guard.EnterReferenceAsync(cancellationToken).ConfigureAwait(false);
        await using (lease.ConfigureAwait(false))
        {
            try
            {
                await commit(expected, cancellationToken).ConfigureAwait(false);
            }
            catch (DigestMismatchException ex)
            {
                throw new OciException(OciErrorCode.DigestInvalid, ex.Message);
            }

            await lease.NoteReferencedAsync(expected, cancellationToken).ConfigureAwait(false);
            await storage.Repositories.LinkBlobAsync(repository, expected, cancellationToken).ConfigureAwait(false);
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
