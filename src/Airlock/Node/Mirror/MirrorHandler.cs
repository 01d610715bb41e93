using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Airlock.Distribution;
using Airlock.Oci;
using Airlock.Remote;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Airlock.Node.Mirror;

/// <summary>
/// Serves the pull side of <c>/v2/</c> for containerd: the registry comes from containerd's <c>ns</c> query parameter,
/// its endpoints are tried in registries.yaml order (rewrites applied per endpoint), the first success is streamed
/// back unbuffered (Range passed through), and an endpoint that is down, times out, fails or has not got the content
/// is skipped for the next. Errors use the registry's one error table.
/// </summary>
internal sealed class MirrorHandler : IMirrorRegistryAccess
{
    /// <summary>
    /// The most one upstream read asks for, straight into Kestrel's output buffer. On loopback and fast links a read
    /// fills it, so a 512 MiB layer costs ~512 recv/send pairs and flushes instead of ~8200 at 64 KiB; the per-chunk
    /// costs (syscalls, waking Kestrel's socket sender, thread-pool spinning) were half the mirror's CPU time, the
    /// rest being the two kernel copies every proxied byte needs (bench/mirror-bench.sh: 0.6 → 0.3 CPU s per
    /// 512 MiB). A read returns what has arrived, so a slow upstream is forwarded as it trickles in, never held back
    /// to fill a chunk.
    /// </summary>
    internal const int CopyChunkSize = 1024 * 1024;

    /// <summary>
    /// Kestrel's response buffer (<c>MaxResponseBufferSize</c>, 64 KiB by default): two chunks, so the next read from
    /// upstream overlaps sending the last one instead of every flush waiting for the send to drain.
    /// </summary>
    internal const long ResponseBufferSize = 2 * CopyChunkSize;

    private static readonly string[] PassedHeaders = [RegistryHeaders.ContentDigest, "Accept-Ranges", "ETag", "Last-Modified"];

    private MirrorUpstreams _current;
    private readonly MirrorOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, long> _downUntil = new(StringComparer.Ordinal);

    public MirrorHandler(MirrorUpstreams initial, MirrorOptions options)
    {
        _current = initial;
        _options = options;
        _logger = options.LoggerFactory.CreateLogger("Airlock.Node.Mirror");
    }

    /// <summary>The registries.yaml being served now.</summary>
    public MirrorUpstreams Current => Volatile.Read(ref _current);

    RegistriesFile IMirrorRegistryAccess.Registries => Current.Registries;

    Task<Stream> IMirrorRegistryAccess.OpenBlobAsync(string registry, string repository, Digest digest, CancellationToken cancellationToken) =>
        OpenBlobFromRegistryAsync(registry, OciRoute.ForBlob(repository, digest), cancellationToken);

    async Task<bool> IMirrorRegistryAccess.CanReadBlobAsync(string registry, string repository, Digest digest, CancellationToken cancellationToken)
    {
        var upstreams = Acquire();
        try
        {
            var route = OciRoute.ForBlob(repository, digest);
            var (response, _, _) = await SendAsync(upstreams, route, route.Resource, registry, head: true, accept: null, range: null, cancellationToken).ConfigureAwait(false);
            response.Dispose();
            return true;
        }
        catch (OciException)
        {
            // No endpoint answered with the blob (404, 401, 403, or none reachable): not known to be readable.
            return false;
        }
        finally
        {
            upstreams.Release();
        }
    }

    /// <summary>Serves <paramref name="next"/> from now on; returns the previous one for the caller to retire.</summary>
    public MirrorUpstreams Swap(MirrorUpstreams next) => Interlocked.Exchange(ref _current, next);

    public async Task HandleAsync(HttpContext context)
    {
        try
        {
            await ServeAsync(context).ConfigureAwait(false);
        }
        catch (OciException ex) when (!context.Response.HasStarted)
        {
            await OciErrorTable.WriteAsync(context, ex).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // containerd went away.
        }
        catch (IOException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
    }

    private async Task ServeAsync(HttpContext context)
    {
        var request = context.Request;
        context.Response.Headers[RegistryHeaders.ApiVersion] = RegistryHeaders.ApiVersionValue;
        var path = request.Path.Value ?? "/";
        var rawPath = OciRoute.TargetPath(context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? path) ?? path;

        if (_options.BlobSource is { } source && !rawPath.StartsWith("/v2", StringComparison.Ordinal) && await source.TryServeOtherAsync(context).ConfigureAwait(false))
        {
            return;
        }

        if (!OciRoute.TryParse(rawPath, out var route))
        {
            throw new OciException(OciErrorCode.NotFound, $"{rawPath} is not part of the registry API");
        }

        var head = HttpMethods.IsHead(request.Method);
        if (!head && !HttpMethods.IsGet(request.Method))
        {
            throw new OciException(OciErrorCode.MethodNotAllowed, $"{request.Method} is not allowed: the node mirror serves pulls only");
        }

        switch (route.Kind)
        {
            case OciRouteKind.Base:
                context.Response.ContentType = "application/json";
                context.Response.ContentLength = 2;
                if (!head)
                {
                    await context.Response.Body.WriteAsync("{}"u8.ToArray(), context.RequestAborted).ConfigureAwait(false);
                }

                return;
            case OciRouteKind.Manifest or OciRouteKind.Blob or OciRouteKind.TagList or OciRouteKind.Referrers:
                break;
            default:
                throw new OciException(OciErrorCode.Unsupported, "the node mirror serves pulls only (manifests, blobs, tags, referrers)");
        }

        var registry = request.Query["ns"].ToString();
        if (registry.Length == 0)
        {
            throw new OciException(OciErrorCode.NameUnknown,
                "no ns query parameter: the node mirror learns the registry from the ns parameter containerd adds to requests for a host other than the registry's own");
        }

        if (registry.IndexOfAny(['/', '?', '#', '@', ' ']) >= 0 || !EndpointAddress.TryNormalize(registry, out _, out _))
        {
            throw new OciException(OciErrorCode.NameInvalid, $"ns \"{registry}\" is not a registry host");
        }

        if (route is { Kind: OciRouteKind.Blob, Digest: { } digest } && _options.BlobSource is { } blobs && blobs.Shares(Current.Registries, registry))
        {
            await blobs.ServeBlobAsync(context, new MirrorBlobRequest(registry, route.Name, digest, head)).ConfigureAwait(false);
            return;
        }

        var tags = route.Tag is not null && _options.BlobSource is { } tagSource && tagSource.Shares(Current.Registries, registry) ? tagSource : null;
        if (tags is not null && await tags.ResolveTagAsync(registry, route.Name, route.Tag!, context.RequestAborted).ConfigureAwait(false) is { } resolved)
        {
            if (head)
            {
                context.Response.ContentType = resolved.MediaType;
                context.Response.ContentLength = resolved.Size;
                context.Response.Headers[RegistryHeaders.ContentDigest] = resolved.Digest.ToString();
                return;
            }

            // The manifest itself is content-addressed: the one the peer named, by digest, from the registry.
            var byDigest = OciRoute.ForManifest(route.Name, resolved.Digest.ToString());
            await ForwardAsync(context, byDigest, byDigest.Resource + PassedQuery(request), registry, head, tags: null).ConfigureAwait(false);
            return;
        }

        await ForwardAsync(context, route, route.Resource + PassedQuery(request), registry, head, tags).ConfigureAwait(false);
    }

    private async Task ForwardAsync(HttpContext context, OciRoute route, string suffix, string registry, bool head, IMirrorBlobSource? tags = null)
    {
        var upstreams = Acquire();
        try
        {
            var accept = Accept(context.Request, route.Kind);
            var range = RangeHeaderValue.TryParse(context.Request.Headers.Range.ToString(), out var parsed) ? parsed : null;
            var (response, url, repository) = await SendAsync(upstreams, route, suffix, registry, head, accept, range, context.RequestAborted).ConfigureAwait(false);
            using (response)
            {
                MirrorLog.Served(_logger, context.Request.Method, registry, route.Name, route.Reference, url, repository, response.Status);
                if (tags is not null && route.Tag is { } tag && Digest.TryParse(response.Header(RegistryHeaders.ContentDigest), out var digest)
                    && response.Message.Content.Headers is { ContentType.MediaType: { Length: > 0 } mediaType, ContentLength: { } size })
                {
                    tags.TagResolved(new MirrorTag(registry, route.Name, tag, digest, mediaType, size));
                }

                await CopyAsync(context, response, head, route, registry, url).ConfigureAwait(false);
            }
        }
        finally
        {
            upstreams.Release();
        }
    }

    /// <summary>
    /// The registries.yaml endpoints of <paramref name="registry"/> in try order until one answers 2xx; that response is
    /// returned (the caller disposes it). Throws <see cref="OciException"/> naming every endpoint's failure otherwise:
    /// 404 when any had not got the content, 502 when all failed.
    /// </summary>
    private async Task<(RegistryResponse Response, string Url, string Repository)> SendAsync(MirrorUpstreams upstreams, OciRoute route, string suffix,
        string registry, bool head, IReadOnlyList<string>? accept, RangeHeaderValue? range, CancellationToken cancellationToken)
    {
        var endpoints = upstreams.Resolve(registry);
        if (endpoints.Count == 0)
        {
            throw new OciException(OciErrorCode.NameUnknown,
                $"registry {registry} has no endpoint: it has no mirror endpoints and its default endpoint is disabled");
        }

        var failures = new List<string>();
        var notFound = false;
        foreach (var endpoint in InTryOrder(endpoints))
        {
            var url = endpoint.Url!;
            var repository = RepositoryRewrite.Apply(endpoint.Rewrites, route.Name);
            var call = new RegistryCall
            {
                Registry = endpoint.RegistryName ?? registry,
                Repository = repository,
                Reference = route.Reference,
                Method = head ? HttpMethod.Head : HttpMethod.Get,
                Target = url.TrimEnd('/') + "/" + repository + "/" + suffix,
                Scopes = [RegistryClient.PullScope(repository)],
                Accept = accept,
                Range = range,
            };

            var started = Stopwatch.GetTimestamp();
            RegistryResponse response;
            try
            {
                response = await upstreams.Client.SendAsync(call, cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryException ex)
            {
                MarkDown(url);
                MirrorLog.EndpointFailed(_logger, registry, route.Name, route.Reference, url, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, ex.Message);
                failures.Add($"{url}: {ex.Message}");
                continue;
            }

            if (response.IsSuccess)
            {
                _downUntil.TryRemove(url, out _);
                return (response, url, repository);
            }

            using (response)
            {
                if (RegistryClient.IsTransient(response.Status))
                {
                    MarkDown(url);
                }

                notFound |= response.Status == HttpStatusCode.NotFound;
                MirrorLog.EndpointAnswered(_logger, registry, route.Name, route.Reference, url, response.Status);
                failures.Add($"{url}: HTTP {(int)response.Status}");
            }
        }

        var detail = $"{registry}/{route.Name} {route.Reference}: {string.Join("; ", failures)}";
        if (notFound)
        {
            throw new OciException(route.Kind switch
            {
                OciRouteKind.Manifest => OciErrorCode.ManifestUnknown,
                OciRouteKind.Blob => OciErrorCode.BlobUnknown,
                _ => OciErrorCode.NameUnknown,
            }, detail);
        }

        throw new OciException(OciErrorCode.UpstreamUnavailable, detail);
    }

    /// <summary>
    /// A blob from the registries.yaml endpoints as an unverified body of known size for the peer-to-peer mirror, which
    /// hashes it as it stores it. It holds its own lease of the registries.yaml in service until disposed, so a reload
    /// does not close the client under a download that outlives the request that started it.
    /// </summary>
    private async Task<Stream> OpenBlobFromRegistryAsync(string registry, OciRoute route, CancellationToken cancellationToken)
    {
        var upstreams = Acquire();
        RegistryResponse? response = null;
        try
        {
            (response, var url, var repository) = await SendAsync(upstreams, route, route.Resource, registry, head: false, accept: null, range: null, cancellationToken).ConfigureAwait(false);
            var size = response.Message.Content.Headers.ContentLength
                ?? throw new OciException(OciErrorCode.UpstreamUnavailable, $"{url} answered blob {route.Reference} of {repository} without a Content-Length");
            MirrorLog.Served(_logger, "GET", registry, route.Name, route.Reference, url, repository, response.Status);
            var body = await response.Message.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new Airlock.IO.BoundedBodyStream(body, size, _options.ResponseTimeout, _options.TimeProvider, response, new Lease(upstreams));
        }
        catch
        {
            response?.Dispose();
            upstreams.Release();
            throw;
        }
    }

    private sealed class Lease(MirrorUpstreams upstreams) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                upstreams.Release();
            }
        }
    }

    private async Task CopyAsync(HttpContext context, RegistryResponse upstream, bool head, OciRoute route, string registry, string endpoint)
    {
        var response = context.Response;
        var message = upstream.Message;
        response.StatusCode = (int)message.StatusCode;
        var content = message.Content.Headers;
        if (content.ContentType is { } contentType)
        {
            response.ContentType = contentType.ToString();
        }

        if (content.ContentLength is { } length)
        {
            response.ContentLength = length;
        }

        if (content.ContentRange is { } contentRange)
        {
            response.Headers.ContentRange = contentRange.ToString();
        }

        foreach (var name in PassedHeaders)
        {
            if (upstream.Header(name) is { } value)
            {
                response.Headers[name] = value;
            }
        }

        if (head)
        {
            return;
        }

        // Read straight into Kestrel's output buffers: one copy of each byte, no staging buffer of our own.
        var aborted = context.RequestAborted;
        var body = await message.Content.ReadAsStreamAsync(aborted).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            var writer = response.BodyWriter;
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            var timed = _options.ResponseTimeout != Timeout.InfiniteTimeSpan;
            var remaining = content.ContentLength;
            try
            {
                while (true)
                {
                    if (timed)
                    {
                        stall.CancelAfter(_options.ResponseTimeout);
                    }

                    // Never more than is left to come: a manifest does not lease a 1 MiB buffer.
                    var want = remaining is { } left ? (int)Math.Clamp(left, 1, CopyChunkSize) : CopyChunkSize;
                    var read = await body.ReadAsync(writer.GetMemory(want), stall.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    remaining -= read;
                    if (timed)
                    {
                        stall.CancelAfter(Timeout.InfiniteTimeSpan);
                    }

                    writer.Advance(read);
                    var flushed = await writer.FlushAsync(aborted).ConfigureAwait(false);
                    if (flushed.IsCompleted || flushed.IsCanceled)
                    {
                        break;
                    }
                }
            }
            catch (Exception ex) when (!aborted.IsCancellationRequested && ex is IOException or HttpRequestException or OperationCanceledException)
            {
                // Headers (and a length) are out: cut the connection so containerd sees a short body and retries,
                // instead of a response that looks complete.
                MirrorLog.TransferBroken(_logger, registry, route.Name, route.Reference, endpoint, ex is OperationCanceledException
                    ? $"no data for {_options.ResponseTimeout.TotalSeconds:0.###} s" : ex.Message);
                context.Abort();
            }
        }
    }

    private MirrorUpstreams Acquire()
    {
        while (true)
        {
            var current = Current;
            if (current.TryAcquire())
            {
                return current;
            }
        }
    }

    // Healthy endpoints in registries.yaml order, then those that failed recently (still tried: they may be back).
    private IEnumerable<ResolvedEndpoint> InTryOrder(IReadOnlyList<ResolvedEndpoint> endpoints)
    {
        var now = _options.TimeProvider.GetTimestamp();
        var down = new List<ResolvedEndpoint>();
        foreach (var endpoint in endpoints)
        {
            if (_downUntil.TryGetValue(endpoint.Url!, out var until) && until > now)
            {
                down.Add(endpoint);
            }
            else
            {
                yield return endpoint;
            }
        }

        foreach (var endpoint in down)
        {
            yield return endpoint;
        }
    }

    private void MarkDown(string url)
    {
        if (_options.DownFor > TimeSpan.Zero)
        {
            var ticks = (long)(_options.DownFor.TotalSeconds * _options.TimeProvider.TimestampFrequency);
            _downUntil[url] = _options.TimeProvider.GetTimestamp() + ticks;
        }
    }

    private static IReadOnlyList<string>? Accept(HttpRequest request, OciRouteKind kind)
    {
        var values = request.Headers.Accept.SelectMany(v => (v ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            .Select(v => MediaTypeWithQualityHeaderValue.TryParse(v, out var parsed) ? parsed.MediaType : null)
            .OfType<string>()
            .ToList();
        if (values.Count > 0)
        {
            return values;
        }

        return kind == OciRouteKind.Manifest ? RegistryClient.ManifestMediaTypes : null;
    }

    // Every query parameter but ns (tag pagination n/last, referrers artifactType) goes upstream unchanged.
    private static string PassedQuery(HttpRequest request)
    {
        var sb = new StringBuilder();
        foreach (var (key, values) in request.Query)
        {
            if (key == "ns")
            {
                continue;
            }

            foreach (var value in values)
            {
                sb.Append(sb.Length == 0 ? '?' : '&').Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value ?? string.Empty));
            }
        }

        return sb.ToString();
    }
}
