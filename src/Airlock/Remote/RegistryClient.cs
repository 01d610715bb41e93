using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;
using Airlock.Tls;
using Microsoft.Extensions.Logging;

namespace Airlock.Remote;

/// <summary>How a blob reached the target registry.</summary>
public enum BlobPushResult
{
    /// <summary>The content was streamed to the registry.</summary>
    Uploaded,

    /// <summary>The registry linked the blob from another repository (cross-repository mount); nothing was sent.</summary>
    Mounted,
}

/// <summary>
/// An OCI Distribution client over one pooled socket handler (HTTP/1.1, HTTP/2 over TLS), shared by every
/// registry it talks to: endpoint choice, auth challenges and tokens, retries with backoff, resumable and
/// verified blob downloads, streamed uploads with cross-repository mounts. Thread-safe; create one per process.
/// </summary>
public sealed partial class RegistryClient : IDisposable
{
    /// <summary>The largest manifest or index accepted (the limit distribution and containerd apply).</summary>
    public const int MaxManifestSize = 4 * 1024 * 1024;

    /// <summary>Every manifest media type, for Accept headers.</summary>
    public static readonly IReadOnlyList<string> ManifestMediaTypes =
        [MediaTypes.OciManifest, MediaTypes.OciIndex, MediaTypes.DockerManifest, MediaTypes.DockerManifestList];

    private readonly RemoteOptions _options;
    private readonly ILogger _logger;
    private readonly ClientTrust _tls;
    private readonly HttpClient _http;
    private readonly RegistryAuthenticator _auth;

    public RegistryClient(RemoteOptions? options = null)
    {
        _options = options ?? new RemoteOptions();
        if (_options.MaxAttempts < 1)
        {
            throw new ArgumentException("MaxAttempts must be at least 1", nameof(options));
        }

        _logger = _options.LoggerFactory.CreateLogger<RegistryClient>();
        try
        {
            // Settings are keyed by registry name; TLS sees the host the API is served on (docker.io: registry-1.docker.io).
            _tls = new ClientTrust(_options.Tls.Select(t => KeyValuePair.Create(RegistryHost.ApiHostOf(t.Key), t.Value)),
                _options.Insecure, _options.TimeProvider, _logger);
        }
        catch (TlsMaterialException e)
        {
            throw new InvalidOperationException($"registry {e.Message}", e);
        }

        var sockets = new SocketsHttpHandler
        {
            ConnectTimeout = _options.ConnectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            // Re-resolve names now and then so a registry moved behind DNS is followed.
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            EnableMultipleHttp2Connections = true,
            AutomaticDecompression = DecompressionMethods.None,
            // Blob GETs redirect to storage (S3 presigned URLs); the handler drops Authorization on redirect.
            AllowAutoRedirect = true,
            SslOptions = _tls.CreateSslOptions(),
        };
        HttpMessageHandler handler = _options.WrapHandler is { } wrap ? wrap(sockets) : sockets;
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
        _auth = new RegistryAuthenticator(this, _options, _logger);
    }

    public RemoteOptions Options => _options;

    /// <summary>
    /// The descriptor a tag or digest names: HEAD with every manifest media type accepted, falling back to GET
    /// (and hashing the body) when HEAD gives no Docker-Content-Digest.
    /// </summary>
    public async Task<Descriptor> ResolveAsync(ImageReference repository, string reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var expected = ParseDigestReference(reference);
        var call = ManifestCall(repository, reference, HttpMethod.Head);
        using (var head = await SendAsync(call, cancellationToken).ConfigureAwait(false))
        {
            if (head.IsSuccess && Digest.TryParse(head.Header(RegistryHeaders.ContentDigest), out var digest)
                && head.Message.Content.Headers.ContentLength is { } size && head.Message.Content.Headers.ContentType?.MediaType is { } mediaType
                && MediaTypes.IsManifest(mediaType) && (expected is null || expected == digest))
            {
                return new Descriptor { MediaType = mediaType, Digest = digest, Size = size };
            }

            if (head.Status == HttpStatusCode.NotFound)
            {
                throw Failure(call, head, "manifest not found");
            }
        }

        var (descriptor, _) = await GetManifestAsync(repository, reference, cancellationToken).ConfigureAwait(false);
        return descriptor;
    }

    /// <summary>
    /// A manifest or index by tag or digest, capped at <see cref="MaxManifestSize"/>. Fetched by digest, the bytes
    /// must hash to it (<see cref="DigestMismatchException"/> otherwise); by tag, the digest is computed from them.
    /// </summary>
    public async Task<(Descriptor Descriptor, ReadOnlyMemory<byte> Content)> GetManifestAsync(ImageReference repository, string reference,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var expected = ParseDigestReference(reference);
        var call = ManifestCall(repository, reference, HttpMethod.Get) with { BufferBody = true, MaxBody = MaxManifestSize };
        using var response = await SendAsync(call, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccess)
        {
            throw Failure(call, response);
        }

        var body = response.Body;
        Digest digest;
        if (expected is { } wanted)
        {
            using var hash = wanted.CreateHash();
            hash.AppendData(body);
            digest = Digest.FromHash(wanted.Algorithm, hash.GetCurrentHash());
            if (digest != wanted)
            {
                throw new DigestMismatchException(wanted, digest, $"manifest from {repository.Registry}/{repository.Repository} does not match its digest");
            }
        }
        else
        {
            digest = Digest.Sha256(body);
        }

        string mediaType;
        try
        {
            mediaType = ManifestDocument.Parse(body, response.Message.Content.Headers.ContentType?.MediaType).MediaType;
        }
        catch (ManifestFormatException ex)
        {
            throw new RegistryException(call.Registry, call.Repository, call.Reference, response.Status, [], $"invalid manifest: {ex.Message}", ex);
        }

        return (new Descriptor { MediaType = mediaType, Digest = digest, Size = body.Length }, body);
    }

    /// <summary>Whether the repository has a manifest with this digest (HEAD).</summary>
    public async Task<bool> ManifestExistsAsync(ImageReference repository, Digest digest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var call = ManifestCall(repository, digest.ToString(), HttpMethod.Head);
        using var response = await SendAsync(call, cancellationToken).ConfigureAwait(false);
        return response.Status switch
        {
            _ when response.IsSuccess => true,
            HttpStatusCode.NotFound => false,
            _ => throw Failure(call, response),
        };
    }

    /// <summary>
    /// Opens a blob for reading: verified against the descriptor's digest and size while read (the stream throws
    /// <see cref="DigestMismatchException"/> at its end otherwise) and resumed with Range requests when the
    /// connection drops.
    /// </summary>
    public async Task<Stream> OpenBlobAsync(ImageReference repository, Descriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(blob);
        var call = BlobCall(repository, blob.Digest, HttpMethod.Get);
        var response = await SendAsync(call, cancellationToken).ConfigureAwait(false);
        try
        {
            if (!response.IsSuccess)
            {
                throw Failure(call, response);
            }

            var resuming = await ResumingBlobStream.OpenAsync(this, call, blob.Size, response, _options, _logger, cancellationToken).ConfigureAwait(false);
            return new VerifyingStream(resuming, blob.Digest, blob.Size);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a blob known only by digest (a pull-through miss): the size is the response's Content-Length, which
    /// the returned stream reports as its <see cref="Stream.Length"/>; resumed as above but NOT verified — for a
    /// caller that hashes the bytes itself anyway (a <see cref="Content.BlobIngest"/>) and must not trust them
    /// before that hash matched <paramref name="digest"/>.
    /// </summary>
    public async Task<Stream> OpenUnverifiedBlobAsync(ImageReference repository, Digest digest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var call = BlobCall(repository, digest, HttpMethod.Get);
        var response = await SendAsync(call, cancellationToken).ConfigureAwait(false);
        try
        {
            if (!response.IsSuccess)
            {
                throw Failure(call, response);
            }

            var size = response.Message.Content.Headers.ContentLength
                ?? throw new RegistryException(call.Registry, call.Repository, call.Reference, response.Status, [], "the blob response has no Content-Length");
            return await ResumingBlobStream.OpenAsync(this, call, size, response, _options, _logger, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>Whether the repository has the blob (HEAD).</summary>
    public async Task<bool> BlobExistsAsync(ImageReference repository, Digest digest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var call = BlobCall(repository, digest, HttpMethod.Head);
        using var response = await SendAsync(call, cancellationToken).ConfigureAwait(false);
        return response.Status switch
        {
            _ when response.IsSuccess => true,
            HttpStatusCode.NotFound => false,
            _ => throw Failure(call, response),
        };
    }

    /// <summary>
    /// Pushes a blob. With <paramref name="mountFrom"/> (a repository on the same registry that has it) a
    /// cross-repository mount is tried first; otherwise, or when the registry declines, the content is streamed
    /// in one PUT (size known) or a chunked PATCH (size &lt; 0). A transient failure restarts the whole upload
    /// when <paramref name="content"/> can seek back; a consumed one-way stream is never re-sent.
    /// </summary>
    public async Task<BlobPushResult> PushBlobAsync(ImageReference repository, Descriptor blob, Stream content, string? mountFrom,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(content);
        if (mountFrom is not null && (mountFrom == repository.Repository || !ImageReference.IsValidRepository(mountFrom)))
        {
            mountFrom = null;
        }

        var start = content.CanSeek ? content.Position : 0;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var result = await PushBlobOnceAsync(repository, blob, content, mountFrom, cancellationToken).ConfigureAwait(false);
                if (result == BlobPushResult.Mounted)
                {
                    RemoteLog.Mounted(_logger, blob.Digest.ToString(), repository.Registry, repository.Repository, mountFrom!);
                }
                else
                {
                    RemoteLog.Uploaded(_logger, blob.Digest.ToString(), blob.Size, repository.Registry, repository.Repository);
                }

                return result;
            }
            catch (UploadInterruptedException ex) when (content.CanSeek && attempt < _options.MaxAttempts && !cancellationToken.IsCancellationRequested)
            {
                RemoteLog.RestartingUpload(_logger, blob.Digest.ToString(), repository.Registry, repository.Repository, ex.Message, attempt + 1, _options.MaxAttempts);
                await Task.Delay(Backoff(attempt), _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                content.Position = start;
            }
            catch (UploadInterruptedException ex)
            {
                throw new RegistryException(repository.Registry, repository.Repository, blob.Digest.ToString(), ex.Status, ex.Errors,
                    $"upload failed and cannot be restarted ({(content.CanSeek ? "attempts exhausted" : "the content stream cannot be rewound")}): {ex.Message}",
                    ex.InnerException);
            }
        }
    }

    private async Task<BlobPushResult> PushBlobOnceAsync(ImageReference repository, Descriptor blob, Stream content, string? mountFrom,
        CancellationToken cancellationToken)
    {
        var name = repository.Repository;
        var digest = blob.Digest.ToString();
        var scopes = mountFrom is null ? [PushScope(name)] : new[] { PushScope(name), PullScope(mountFrom) };
        var target = mountFrom is null
            ? OciRoute.ForUploadStart(name).Path
            : $"{OciRoute.ForUploadStart(name).Path}?mount={Uri.EscapeDataString(digest)}&from={Uri.EscapeDataString(mountFrom)}";
        var start = new RegistryCall
        {
            Registry = repository.Registry,
            Repository = name,
            Reference = digest,
            Method = HttpMethod.Post,
            Target = target,
            Scopes = scopes,
            Content = static () => new ByteArrayContent([]),
        };
        string location;
        using (var started = await SendAsync(start, cancellationToken).ConfigureAwait(false))
        {
            if (started.Status == HttpStatusCode.Created && mountFrom is not null)
            {
                return BlobPushResult.Mounted;
            }

            if (started.Status != HttpStatusCode.Accepted)
            {
                throw Failure(start, started, "starting the upload failed");
            }

            location = UploadLocation(start, started);
        }

        if (blob.Size < 0)
        {
            var patch = new RegistryCall
            {
                Registry = repository.Registry,
                Repository = name,
                Reference = digest,
                Method = HttpMethod.Patch,
                Target = location,
                Scopes = [PushScope(name)],
                Replayable = false,
                Content = () => new UploadContent(content, null),
            };
            using var patched = await SendUploadAsync(patch, cancellationToken).ConfigureAwait(false);
            if (patched.Status != HttpStatusCode.Accepted)
            {
                throw new UploadInterruptedException(patched, "chunk upload was not accepted");
            }

            location = UploadLocation(patch, patched);
        }

        var put = new RegistryCall
        {
            Registry = repository.Registry,
            Repository = name,
            Reference = digest,
            Method = HttpMethod.Put,
            Target = location + (location.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest),
            Scopes = [PushScope(name)],
            Replayable = blob.Size < 0,
            Content = blob.Size < 0 ? static () => new ByteArrayContent([]) : () => new UploadContent(content, blob.Size),
        };
        using var finished = await SendUploadAsync(put, cancellationToken).ConfigureAwait(false);
        if (finished.Status != HttpStatusCode.Created)
        {
            if (IsTransient(finished.Status))
            {
                throw new UploadInterruptedException(finished, "upload was not committed");
            }

            throw Failure(put, finished, "the registry did not accept the upload");
        }

        if (Digest.TryParse(finished.Header(RegistryHeaders.ContentDigest), out var stored) && stored != blob.Digest)
        {
            throw new RegistryException(repository.Registry, name, digest, finished.Status, [],
                $"the registry stored the upload as {stored}");
        }

        return BlobPushResult.Uploaded;
    }

    private async Task<RegistryResponse> SendUploadAsync(RegistryCall call, CancellationToken cancellationToken)
    {
        RegistryResponse response;
        try
        {
            response = await SendAsync(call, cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException ex) when (ex.StatusCode is null && ex.InnerException is not null && IsTransient(ex.InnerException, cancellationToken))
        {
            throw new UploadInterruptedException(ex.InnerException);
        }

        if (IsTransient(response.Status))
        {
            using (response)
            {
                throw new UploadInterruptedException(response, "transient failure");
            }
        }

        return response;
    }

    /// <summary>Pushes a manifest or index under its digest, or under a tag when <paramref name="reference"/> is one.</summary>
    public async Task<Digest> PushManifestAsync(ImageReference repository, string mediaType, ReadOnlyMemory<byte> content, string? reference,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        if (content.Length > MaxManifestSize)
        {
            throw new ArgumentException($"manifest is larger than {MaxManifestSize} bytes", nameof(content));
        }

        var digest = Digest.Sha256(content.Span);
        reference ??= digest.ToString();
        var call = new RegistryCall
        {
            Registry = repository.Registry,
            Repository = repository.Repository,
            Reference = reference,
            Method = HttpMethod.Put,
            Target = OciRoute.ForManifest(repository.Repository, reference).Path,
            Scopes = [PushScope(repository.Repository)],
            Content = () =>
            {
                var body = new ReadOnlyMemoryContent(content);
                body.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return body;
            },
        };
        using var response = await SendAsync(call, cancellationToken).ConfigureAwait(false);
        if (response.Status != HttpStatusCode.Created && !response.IsSuccess)
        {
            throw Failure(call, response);
        }

        if (Digest.TryParse(response.Header(RegistryHeaders.ContentDigest), out var stored) && stored.Algorithm == digest.Algorithm && stored != digest)
        {
            throw new RegistryException(call.Registry, call.Repository, reference, response.Status, [],
                $"the registry stored the manifest as {stored}, not {digest}");
        }

        return digest;
    }

    /// <summary>Every tag of a repository, following <c>Link</c> pagination (<c>n</c>/<c>last</c>).</summary>
    public async Task<IReadOnlyList<string>> ListTagsAsync(ImageReference repository, CancellationToken cancellationToken, int pageSize = 1000)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var tags = new List<string>();
        await foreach (var page in PagesAsync(repository.Registry, repository.Repository,
            $"{OciRoute.ForTagList(repository.Repository).Path}?n={pageSize.ToString(CultureInfo.InvariantCulture)}", [PullScope(repository.Repository)], cancellationToken)
            .ConfigureAwait(false))
        {
            tags.AddRange(TagList.Parse(page)?.Tags ?? []);
        }

        return tags;
    }

    /// <summary>Every repository the registry lists in <c>/v2/_catalog</c>, following pagination.</summary>
    public async Task<IReadOnlyList<string>> CatalogAsync(string registry, CancellationToken cancellationToken, int pageSize = 1000)
    {
        var repositories = new List<string>();
        await foreach (var page in PagesAsync(registry, null, $"{OciRoute.Catalog.Path}?n={pageSize.ToString(CultureInfo.InvariantCulture)}",
            ["registry:catalog:*"], cancellationToken).ConfigureAwait(false))
        {
            repositories.AddRange(CatalogPage.Parse(page)?.Repositories ?? []);
        }

        return repositories;
    }

    /// <summary>
    /// Manifests that name <paramref name="subject"/> as their subject: the referrers API, or (when it answers
    /// 404) the referrers tag schema <c>sha256-&lt;hex&gt;</c>. Filtered by <paramref name="artifactType"/> when given.
    /// </summary>
    public async Task<IReadOnlyList<Descriptor>> ReferrersAsync(ImageReference repository, Digest subject, string? artifactType,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var target = OciRoute.ForReferrers(repository.Repository, subject).Path;
        if (artifactType is not null)
        {
            target += "?artifactType=" + Uri.EscapeDataString(artifactType);
        }

        var call = new RegistryCall
        {
            Registry = repository.Registry,
            Repository = repository.Repository,
            Reference = subject.ToString(),
            Method = HttpMethod.Get,
            Target = target,
            Scopes = [PullScope(repository.Repository)],
            Accept = [MediaTypes.OciIndex],
            BufferBody = true,
        };
        IReadOnlyList<Descriptor> found;
        using (var response = await SendAsync(call, cancellationToken).ConfigureAwait(false))
        {
            if (response.IsSuccess)
            {
                found = ParseReferrers(call, response.Body);
                return Filter(found, artifactType);
            }

            if (response.Status != HttpStatusCode.NotFound)
            {
                throw Failure(call, response);
            }
        }

        var fallbackTag = subject.Algorithm + "-" + subject.Encoded;
        var tagCall = ManifestCall(repository, fallbackTag, HttpMethod.Get) with { BufferBody = true };
        using var tagged = await SendAsync(tagCall, cancellationToken).ConfigureAwait(false);
        if (tagged.Status == HttpStatusCode.NotFound)
        {
            return [];
        }

        if (!tagged.IsSuccess)
        {
            throw Failure(tagCall, tagged);
        }

        return Filter(ParseReferrers(tagCall, tagged.Body), artifactType);
    }

    private static IReadOnlyList<Descriptor> ParseReferrers(RegistryCall call, byte[] body)
    {
        try
        {
            var index = ManifestDocument.Parse(body, MediaTypes.OciIndex);
            return index.Manifests;
        }
        catch (ManifestFormatException ex)
        {
            throw new RegistryException(call.Registry, call.Repository, call.Reference, HttpStatusCode.OK, [], $"invalid referrers index: {ex.Message}", ex);
        }
    }

    private static IReadOnlyList<Descriptor> Filter(IReadOnlyList<Descriptor> referrers, string? artifactType) =>
        artifactType is null ? referrers : referrers.Where(d => d.ArtifactType == artifactType).ToList();

    private async IAsyncEnumerable<byte[]> PagesAsync(string registry, string? repository, string first, IReadOnlyList<string> scopes,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? next = first;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (next is not null && seen.Add(next))
        {
            var call = new RegistryCall
            {
                Registry = registry,
                Repository = repository,
                Method = HttpMethod.Get,
                Target = next,
                Scopes = scopes,
                BufferBody = true,
            };
            using var response = await SendAsync(call, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccess)
            {
                throw Failure(call, response);
            }

            yield return response.Body;
            next = NextPage(response);
        }
    }

    // Link: </v2/name/tags/list?n=100&last=x>; rel="next"
    private static string? NextPage(RegistryResponse response)
    {
        if (!response.Message.Headers.NonValidated.TryGetValues("Link", out var links))
        {
            return null;
        }

        foreach (var header in links)
        {
            foreach (var link in header.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var open = link.IndexOf('<', StringComparison.Ordinal);
                var close = link.IndexOf('>', StringComparison.Ordinal);
                if (open >= 0 && close > open && link[close..].Contains("rel=\"next\"", StringComparison.OrdinalIgnoreCase) || (open >= 0 && close > open && link[close..].Contains("rel=next", StringComparison.OrdinalIgnoreCase)))
                {
                    return link[(open + 1)..close];
                }
            }
        }

        return null;
    }

    private static string UploadLocation(RegistryCall call, RegistryResponse response)
    {
        var location = response.Message.Headers.Location;
        if (location is null)
        {
            throw new RegistryException(call.Registry, call.Repository, call.Reference, response.Status, [], "the registry gave no upload Location");
        }

        return location.IsAbsoluteUri ? location.AbsoluteUri : location.OriginalString;
    }

    private static RegistryCall ManifestCall(ImageReference repository, string reference, HttpMethod method) => new()
    {
        Registry = repository.Registry,
        Repository = repository.Repository,
        Reference = reference,
        Method = method,
        Target = OciRoute.ForManifest(repository.Repository, reference).Path,
        Scopes = [PullScope(repository.Repository)],
        Accept = ManifestMediaTypes,
    };

    private static RegistryCall BlobCall(ImageReference repository, Digest digest, HttpMethod method) => new()
    {
        Registry = repository.Registry,
        Repository = repository.Repository,
        Reference = digest.ToString(),
        Method = method,
        Target = OciRoute.ForBlob(repository.Repository, digest).Path,
        Scopes = [PullScope(repository.Repository)],
    };

    private static Digest? ParseDigestReference(string reference)
    {
        ArgumentException.ThrowIfNullOrEmpty(reference);
        if (reference.Contains(':', StringComparison.Ordinal))
        {
            return Digest.Parse(reference);
        }

        if (!ImageReference.IsValidTag(reference))
        {
            throw new ArgumentException($"\"{reference}\" is neither a tag nor a digest", nameof(reference));
        }

        return null;
    }

    internal static string PullScope(string repository) => $"repository:{repository}:pull";

    internal static string PushScope(string repository) => $"repository:{repository}:pull,push";

    public void Dispose()
    {
        _http.Dispose();
        _tls.Dispose();
        _auth.Dispose();
    }

    /// <summary>An upload body was (possibly) consumed and the upload must start over to be retried.</summary>
    private sealed class UploadInterruptedException : Exception
    {
        public UploadInterruptedException(Exception inner)
            : base(inner.Message, inner)
        {
            Errors = [];
        }

        public UploadInterruptedException(RegistryResponse response, string message)
            : base($"{message} (HTTP {(int)response.Status})")
        {
            Status = response.Status;
            Errors = ErrorBody.Parse(response.Body);
        }

        public HttpStatusCode? Status { get; }

        public IReadOnlyList<RegistryError> Errors { get; }
    }
}
