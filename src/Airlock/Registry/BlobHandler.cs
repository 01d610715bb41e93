using System.Globalization;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry;

/// <summary><c>/v2/&lt;name&gt;/blobs/&lt;digest&gt;</c>: GET (with Range), HEAD, DELETE.</summary>
internal sealed class BlobHandler(IRegistryStore storage, RegistryMetrics metrics, ZeroCopySender? zeroCopy, ILogger logger)
{
    public async Task GetAsync(HttpContext context, OciRoute route, bool head)
    {
        var digest = route.Digest!.Value;
        var ct = context.RequestAborted;
        if (await storage.Repositories.GetBlobLinkAsync(route.Name, digest, ct).ConfigureAwait(false) is null
            && await storage.Repositories.ManifestMediaTypeAsync(route.Name, digest, ct).ConfigureAwait(false) is null)
        {
            throw new OciException(OciErrorCode.BlobUnknown, $"blob {digest} is not in {route.Name}");
        }

        var size = await storage.Blobs.SizeAsync(digest, ct).ConfigureAwait(false)
            ?? throw new OciException(OciErrorCode.BlobUnknown, $"blob {digest} content is missing");

        var response = context.Response;
        var headers = response.Headers;
        headers[RegistryHeaders.ContentDigest] = digest.ToString();
        headers.AcceptRanges = RegistryHeaders.Bytes;
        headers.ContentType = RegistryHeaders.OctetStream;

        long offset = 0;
        var count = size;
        var range = context.Request.Headers.Range;
        if (range.Count == 1 && TryParseRange(range[0], size, out var start, out var end, out var satisfiable))
        {
            if (!satisfiable)
            {
                throw new OciException(OciErrorCode.RangeInvalid, $"range {range[0]} is outside the blob's {size} bytes")
                {
                    Headers = [KeyValuePair.Create("Content-Range", string.Create(CultureInfo.InvariantCulture, $"bytes */{size}"))],
                };
            }

            offset = start;
            count = end - start + 1;
            response.StatusCode = StatusCodes.Status206PartialContent;
            headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes {start}-{end}/{size}");
        }
        else
        {
            response.StatusCode = StatusCodes.Status200OK;
        }

        response.ContentLength = count;
        if (head)
        {
            return;
        }

        metrics.AddBytesOut(count);
        var path = storage.Blobs.LocalPath(digest);
        if (path is null)
        {
            var stream = await storage.Blobs.OpenReadAsync(digest, ct).ConfigureAwait(false)
                ?? throw new OciException(OciErrorCode.BlobUnknown, $"blob {digest} content is missing");
            await using (stream.ConfigureAwait(false))
            {
                stream.Seek(offset, SeekOrigin.Begin);
                await StreamCopy.CopyAsync(stream, response.Body, count, ct).ConfigureAwait(false);
            }

            return;
        }

        if (zeroCopy is not null && offset == 0 && count == size && await zeroCopy.TrySendAsync(context, path, size).ConfigureAwait(false))
        {
            return;
        }

        await response.SendFileAsync(path, offset, count, ct).ConfigureAwait(false);
    }

    public async Task DeleteAsync(HttpContext context, OciRoute route)
    {
        var digest = route.Digest!.Value;
        if (!await storage.Repositories.UnlinkBlobAsync(route.Name, digest, context.RequestAborted).ConfigureAwait(false))
        {
            throw new OciException(OciErrorCode.BlobUnknown, $"blob {digest} is not in {route.Name}");
        }

        logger.LogDebug("Blob {Digest} unlinked from {Repository}", digest, route.Name);
        context.Response.StatusCode = StatusCodes.Status202Accepted;
        context.Response.ContentLength = 0;
    }

    /// <summary>
    /// One <c>bytes=a-b</c>, <c>bytes=a-</c> or <c>bytes=-n</c> range. Returns false for anything else
    /// (several ranges, other units), which is served whole as RFC 9110 allows.
    /// </summary>
    internal static bool TryParseRange(string? value, long size, out long start, out long end, out bool satisfiable)
    {
        start = 0;
        end = 0;
        satisfiable = false;
        if (value is null || !value.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) || value.Contains(','))
        {
            return false;
        }

        var spec = value.AsSpan(6).Trim();
        var dash = spec.IndexOf('-');
        if (dash < 0)
        {
            return false;
        }

        var first = spec[..dash].Trim();
        var last = spec[(dash + 1)..].Trim();
        if (first.IsEmpty)
        {
            if (!long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out var suffix))
            {
                return false;
            }

            satisfiable = suffix > 0 && size > 0;
            start = Math.Max(0, size - suffix);
            end = size - 1;
            return true;
        }

        if (!long.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out start))
        {
            return false;
        }

        if (last.IsEmpty)
        {
            end = size - 1;
        }
        else if (!long.TryParse(last, NumberStyles.None, CultureInfo.InvariantCulture, out end) || end < start)
        {
            return false;
        }

        end = Math.Min(end, size - 1);
        satisfiable = start < size;
        return true;
    }
}

/// <summary>Bounded stream copies with a pooled buffer.</summary>
internal static class StreamCopy
{
    public static async Task CopyAsync(Stream source, Stream destination, long count, CancellationToken cancellationToken)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(128 * 1024);
        try
        {
            while (count > 0)
            {
                var read = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new EndOfStreamException("blob ended before its size");
                }

                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                count -= read;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
