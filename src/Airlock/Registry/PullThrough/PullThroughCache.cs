using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;
using Airlock.Remote;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry.PullThrough;

/// <summary>
/// The pull-through side of the registry. Before the ordinary handlers serve a proxied repository, this
/// makes sure what they need is in the store: manifests by digest once (they never change), tags again
/// after the TTL (the cached tag is served while the upstream is down), blobs on their first request —
/// one download per blob however many clients ask, streamed to them while it is stored. Everything lands
/// in the normal store (manifest revisions, tags, blob links), so garbage collection keeps it like pushed
/// content and the registry serves it when the upstream is gone.
/// </summary>
internal sealed class PullThroughCache : IDisposable
{
    private readonly IRegistryStore _storage;
    private readonly ManifestCache _manifests;
    private readonly PullThroughOptions _options;
    private readonly PullThroughRouter _router;
    private readonly PrivateRepositories _privateRepositories;
    private readonly RegistryClient _client;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<(string Repository, Digest Digest), BlobFetch> _blobs = new();
    private readonly ConcurrentDictionary<(string Repository, string Reference), Lazy<Task>> _manifestFetches = new();
    private readonly ConcurrentDictionary<(string Repository, string Tag), DateTimeOffset> _tagChecked = new();
    private long _hits;
    private long _misses;
    private long _upstreamFetches;
    private long _staleTags;
    private long _upstreamErrors;

    public PullThroughCache(IRegistryStore storage, ManifestCache manifests, PullThroughOptions options, PrivateRepositories privateRepositories, ILoggerFactory loggerFactory)
    {
        _privateRepositories = privateRepositories;
        _storage = storage;
        _manifests = manifests;
        _options = options;
        _router = new PullThroughRouter(options);
        _logger = loggerFactory.CreateLogger("Airlock.Registry.PullThrough");
        var upstreams = RegistryHosts.Apply(options.Remote, options.Upstreams.Select(u => new RegistryHostSettings { Registry = u.ClientRegistry, Endpoint = u.Address }));
        _client = new RegistryClient(upstreams with
        {
            ConnectTimeout = options.Timeout,
            ResponseTimeout = options.Timeout,
            MaxAttempts = Math.Min(options.Remote.MaxAttempts, 2),
            MaxRetryDelay = TimeSpan.FromSeconds(1),
            LoggerFactory = loggerFactory,
            TimeProvider = storage.Time,
        });
    }

    /// <summary>The proxy target of a request (by its <c>ns</c> or path prefix), or null for a local repository.</summary>
    public ProxyTarget? Resolve(string name, string? ns) => _router.Resolve(name, ns);

    /// <summary>Makes the manifest a GET or HEAD asks for present in the store (and the tag current).</summary>
    public async Task PrepareManifestAsync(ProxyTarget target, OciRoute route, CancellationToken cancellationToken)
    {
        var repositories = _storage.Repositories;
        if (route.Digest is { } digest)
        {
            if (await repositories.ManifestMediaTypeAsync(target.LocalName, digest, cancellationToken).ConfigureAwait(false) is not null)
            {
                Interlocked.Increment(ref _hits);
                return;
            }

            Interlocked.Increment(ref _misses);
            await SingleFlightAsync((target.LocalName, digest.ToString()), () => FetchManifestAsync(target, digest, tag: null), cancellationToken).ConfigureAwait(false);
            return;
        }

        var tag = route.Reference;
        var cached = await repositories.ResolveTagAsync(target.LocalName, tag, cancellationToken).ConfigureAwait(false);
        if (cached is not null && _tagChecked.TryGetValue((target.LocalName, tag), out var checkedAt)
            && _storage.Time.GetUtcNow() - checkedAt < _options.TagTtl)
        {
            Interlocked.Increment(ref _hits);
            return;
        }

        if (cached is null)
        {
            Interlocked.Increment(ref _misses);
        }

        await SingleFlightAsync((target.LocalName, tag), () => RefreshTagAsync(target, tag), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Serves a blob GET or HEAD of a proxied repository when the store cannot yet (a miss): returns true when
    /// the response was written here, false when the ordinary blob handler can serve it from the store.
    /// </summary>
    public async Task<bool> ServeBlobAsync(HttpContext context, ProxyTarget target, OciRoute route, bool head)
    {
        var digest = route.Digest!.Value;
        var ct = context.RequestAborted;
        var repositories = _storage.Repositories;
        if (await repositories.ManifestMediaTypeAsync(target.LocalName, digest, ct).ConfigureAwait(false) is not null
            || (await repositories.GetBlobLinkAsync(target.LocalName, digest, ct).ConfigureAwait(false) is not null
                && await _storage.Blobs.StatAsync(digest, ct).ConfigureAwait(false) is not null))
        {
            Interlocked.Increment(ref _hits);
            return false;
        }

        if (await _storage.Blobs.StatAsync(digest, ct).ConfigureAwait(false) is not null)
        {
            // Stored for another repository. Content is shared by digest, but this repository's upstream must
            // have it too, or a client could read another (perhaps private) upstream's blob by naming its digest.
            bool exists;
            try
            {
                exists = await _client.BlobExistsAsync(target.UpstreamReference, digest, ct).ConfigureAwait(false);
            }
            catch (RegistryException ex)
            {
                throw Translate(ex, target, digest.ToString(), OciErrorCode.BlobUnknown);
            }

            if (!exists)
            {
                throw new OciException(OciErrorCode.BlobUnknown, $"blob {digest} is not in {target.Registry}/{target.Repository}");
            }

            Interlocked.Increment(ref _hits);
            await LinkAsync(target, digest).ConfigureAwait(false);
            return false;
        }

        Interlocked.Increment(ref _misses);
        var ranged = context.Request.Headers.Range.Count > 0;
        var (fetch, tee) = StartFetch(target, digest, wantTee: !head && !ranged);
        using (tee)
        {
            long size;
            try
            {
                size = await fetch.Size.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                throw Translate(ex, target, digest.ToString(), OciErrorCode.BlobUnknown);
            }

            if (head)
            {
                WriteHeaders(context.Response, digest, size);
                return true;
            }

            if (tee is null && (ranged || size == 0 || !fetch.IsReadable))
            {
                // A range, an empty blob or a download about to be committed: wait for the stored blob, which the
                // ordinary handler then serves (ranges, sendfile).
                try
                {
                    await fetch.Completion.WaitAsync(ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    throw Translate(ex, target, digest.ToString(), OciErrorCode.BlobUnknown);
                }

                return false;
            }

            WriteHeaders(context.Response, digest, size);
            try
            {
                var served = await fetch.ServeAsync(tee, context.Response.Body, size, ct).ConfigureAwait(false);
                if (served < size)
                {
                    // Fell behind the tee as the download was being committed: the rest comes from the store.
                    await fetch.Completion.WaitAsync(ct).ConfigureAwait(false);
                    var stored = await _storage.Blobs.OpenReadAsync(digest, ct).ConfigureAwait(false)
                        ?? throw new IOException($"blob {digest} vanished right after it was stored");
                    await using (stored.ConfigureAwait(false))
                    {
                        stored.Seek(served, SeekOrigin.Begin);
                        await StreamCopy.CopyAsync(stored, context.Response.Body, size - served, ct).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                // The body is under way: cutting the connection is the only way to tell the client. (A client that
                // went away needs neither; its exception ends the request quietly.)
                _logger.LogWarning("Blob {Digest} of {Repository} could not be served from upstream {Upstream}: {Reason}",
                    digest, target.LocalName, target.Upstream.Address, ex.Message);
                context.Abort();
            }
        }

        return true;
    }

    public string RenderMetrics()
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder(768);
        text.Append("# HELP airlock_registry_proxy_hits_total Pull-through requests served from the cache.\n# TYPE airlock_registry_proxy_hits_total counter\n");
        text.Append(c, $"airlock_registry_proxy_hits_total {Interlocked.Read(ref _hits)}\n");
        text.Append("# HELP airlock_registry_proxy_misses_total Pull-through requests for content not yet cached.\n# TYPE airlock_registry_proxy_misses_total counter\n");
        text.Append(c, $"airlock_registry_proxy_misses_total {Interlocked.Read(ref _misses)}\n");
        text.Append("# HELP airlock_registry_proxy_upstream_blob_fetches_total Blob downloads started from upstreams (shared by concurrent misses).\n# TYPE airlock_registry_proxy_upstream_blob_fetches_total counter\n");
        text.Append(c, $"airlock_registry_proxy_upstream_blob_fetches_total {Interlocked.Read(ref _upstreamFetches)}\n");
        text.Append("# HELP airlock_registry_proxy_stale_tags_total Tags served from the cache because the upstream could not be asked.\n# TYPE airlock_registry_proxy_stale_tags_total counter\n");
        text.Append(c, $"airlock_registry_proxy_stale_tags_total {Interlocked.Read(ref _staleTags)}\n");
        text.Append("# HELP airlock_registry_proxy_upstream_errors_total Upstream requests that failed.\n# TYPE airlock_registry_proxy_upstream_errors_total counter\n");
        text.Append(c, $"airlock_registry_proxy_upstream_errors_total {Interlocked.Read(ref _upstreamErrors)}\n");
        text.Append("# HELP airlock_registry_proxy_upstream_fetches_in_flight Manifest and blob fetches from upstreams running now (a failed one is gone, not kept).\n# TYPE airlock_registry_proxy_upstream_fetches_in_flight gauge\n");
        text.Append(c, $"airlock_registry_proxy_upstream_fetches_in_flight {_manifestFetches.Count + _blobs.Count}\n");
        return text.ToString();
    }

    /// <summary>
    /// Stops the downloads still running (a client may already have all of a blob whose commit is under way) and
    /// waits for them to let go of the store, so nothing writes into it after the registry stopped.
    /// </summary>
    public void Dispose()
    {
        _stopping.Cancel();
        var running = _blobs.Values.Select(f => f.Completion).ToArray();
        if (running.Length > 0 && !Task.WhenAll(running).ContinueWith(_ => { }, TaskScheduler.Default).Wait(TimeSpan.FromSeconds(30)))
        {
            _logger.LogWarning("{Count} pull-through downloads did not stop within 30 s", running.Length);
        }

        _stopping.Dispose();
        _client.Dispose();
    }

    /// <summary>The running download of the blob for the repository, or a new one; the caller that starts it gets the tee when it wants one.</summary>
    private (BlobFetch Fetch, BlobFetch.Tee? Tee) StartFetch(ProxyTarget target, Digest digest, bool wantTee)
    {
        var key = (target.LocalName, digest);
        while (true)
        {
            if (_blobs.TryGetValue(key, out var running))
            {
                return (running, null);
            }

            var fetch = new BlobFetch(digest);
            if (!_blobs.TryAdd(key, fetch))
            {
                continue;
            }

            var tee = wantTee ? fetch.AttachTee() : null;
            Interlocked.Increment(ref _upstreamFetches);
            _logger.LogInformation("Fetching blob {Digest} of {Repository} from {Upstream}", digest, target.LocalName, target.Upstream.Address);
            _ = Task.Run(async () =>
            {
                await fetch.RunAsync(
                    _storage,
                    ct => _client.OpenUnverifiedBlobAsync(target.UpstreamReference, digest, ct),
                    () => LinkAsync(target, digest),
                    _stopping.Token).ConfigureAwait(false);
                if (fetch.Completion.IsFaulted)
                {
                    Interlocked.Increment(ref _upstreamErrors);
                }

                _blobs.TryRemove(KeyValuePair.Create(key, fetch));
            });
            return (fetch, tee);
        }
    }

    private static void WriteHeaders(HttpResponse response, Digest digest, long size)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.Headers[RegistryHeaders.ContentDigest] = digest.ToString();
        response.Headers.ContentType = RegistryHeaders.OctetStream;
        response.ContentLength = size;
    }

    /// <summary>
    /// Marks the repository authenticated-only in the store when its upstream is private, before anything of
    /// it is written there, so it stays hidden from anonymous clients after a restart with other settings.
    /// </summary>
    private async ValueTask ProtectAsync(ProxyTarget target, CancellationToken cancellationToken)
    {
        if (target.Private)
        {
            await _privateRepositories.MarkAsync(_storage.Repositories, target.LocalName, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task LinkAsync(ProxyTarget target, Digest digest)
    {
        var ct = _stopping.Token;
        await ProtectAsync(target, ct).ConfigureAwait(false);
        var lease = await _storage.Guard.EnterReferenceAsync(ct).ConfigureAwait(false);
        await using (lease.ConfigureAwait(false))
        {
            await lease.NoteReferencedAsync(digest, ct).ConfigureAwait(false);
            await _storage.Repositories.LinkBlobAsync(target.LocalName, digest, ct).ConfigureAwait(false);
            await _storage.Blobs.TouchAsync(digest, ct).ConfigureAwait(false);
        }
    }

    private async Task RefreshTagAsync(ProxyTarget target, string tag)
    {
        var ct = _stopping.Token;
        var local = target.LocalName;
        Descriptor resolved;
        try
        {
            resolved = await _client.ResolveAsync(target.UpstreamReference, tag, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RegistryException or DigestMismatchException)
        {
            Interlocked.Increment(ref _upstreamErrors);
            if (ex is RegistryException { StatusCode: not HttpStatusCode.NotFound }
                && await _storage.Repositories.ResolveTagAsync(local, tag, ct).ConfigureAwait(false) is { } cached)
            {
                Interlocked.Increment(ref _staleTags);
                _tagChecked[(local, tag)] = _storage.Time.GetUtcNow();
                _logger.LogWarning("Upstream {Upstream} could not confirm {Repository}:{Tag} ({Reason}); serving the cached {Digest}",
                    target.Upstream.Address, local, tag, ex.Message, cached);
                return;
            }

            throw Translate(ex, target, tag, OciErrorCode.ManifestUnknown);
        }

        if (await _storage.Repositories.ManifestMediaTypeAsync(local, resolved.Digest, ct).ConfigureAwait(false) is null)
        {
            await FetchManifestAsync(target, resolved.Digest, tag).ConfigureAwait(false);
        }
        else if (await _storage.Repositories.ResolveTagAsync(local, tag, ct).ConfigureAwait(false) != resolved.Digest)
        {
            await ProtectAsync(target, ct).ConfigureAwait(false);
            var lease = await _storage.Guard.EnterReferenceAsync(ct).ConfigureAwait(false);
            await using (lease.ConfigureAwait(false))
            {
                await lease.NoteReferencedAsync(resolved.Digest, ct).ConfigureAwait(false);
                await _storage.Repositories.SetTagAsync(local, tag, resolved.Digest, ct).ConfigureAwait(false);
            }

            _manifests.Invalidate(local, tag);
        }

        _tagChecked[(local, tag)] = _storage.Time.GetUtcNow();
    }

    private async Task FetchManifestAsync(ProxyTarget target, Digest digest, string? tag)
    {
        var ct = _stopping.Token;
        Descriptor descriptor;
        ReadOnlyMemory<byte> content;
        try
        {
            (descriptor, content) = await _client.GetManifestAsync(target.UpstreamReference, digest.ToString(), ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RegistryException or DigestMismatchException)
        {
            Interlocked.Increment(ref _upstreamErrors);
            throw Translate(ex, target, digest.ToString(), OciErrorCode.ManifestUnknown);
        }

        var local = target.LocalName;
        await ProtectAsync(target, ct).ConfigureAwait(false);
        var lease = await _storage.Guard.EnterReferenceAsync(ct).ConfigureAwait(false);
        await using (lease.ConfigureAwait(false))
        {
            await lease.NoteReferencedAsync(digest, ct).ConfigureAwait(false);
            await _storage.Blobs.WriteAsync(content, digest, ct).ConfigureAwait(false);
            await _storage.Repositories.PutManifestRevisionAsync(local, digest, descriptor.MediaType, ct).ConfigureAwait(false);
            if (tag is not null)
            {
                await _storage.Repositories.SetTagAsync(local, tag, digest, ct).ConfigureAwait(false);
            }
        }

        if (tag is not null)
        {
            _manifests.Invalidate(local, tag);
        }

        _logger.LogInformation("Cached manifest {Digest} of {Repository}{Tag} from {Upstream}", digest, local, tag is null ? string.Empty : ":" + tag, target.Upstream.Address);
    }

    private async Task SingleFlightAsync((string, string) key, Func<Task> fetch, CancellationToken cancellationToken)
    {
        var lazy = _manifestFetches.GetOrAdd(key, _ => new Lazy<Task>(() => Task.Run(fetch)));
        var task = lazy.Value;

        // Forget the fetch once it ends, whether or not anyone still waits for it, so a failure is not kept.
        _ = task.ContinueWith(_ => _manifestFetches.TryRemove(KeyValuePair.Create(key, lazy)), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        await task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private OciException Translate(Exception ex, ProxyTarget target, string reference, OciErrorCode notFound)
    {
        var upstream = $"{target.Upstream.Address.GetLeftPart(UriPartial.Authority)} ({target.Registry}/{target.Repository})";
        return ex switch
        {
            OciException oci => oci,
            RegistryException { StatusCode: HttpStatusCode.NotFound } => new OciException(notFound, $"{reference} is not in upstream {upstream}"),
            DigestMismatchException mismatch => new OciException(OciErrorCode.UpstreamInvalid, $"upstream {upstream} served {reference} with the wrong content: {mismatch.Message}; nothing was stored"),
            RegistryException { StatusCode: HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden } registry =>
                new OciException(OciErrorCode.UpstreamUnavailable, $"upstream {upstream} refused this cache's credentials for {reference}: {registry.Message}"),
            _ => new OciException(OciErrorCode.UpstreamUnavailable, $"upstream {upstream} failed for {reference}: {ex.Message}"),
        };
    }
}
