using System.Collections.Concurrent;
using System.Net;
using Airlock.Cluster.Join;
using Airlock.Distribution;
using Airlock.IO;
using Airlock.Node.Mirror;
using Airlock.Oci;

namespace Airlock.Cluster.Peers;

/// <summary>A peer that did not deliver: refused, unreachable, too slow, or not holding the blob.</summary>
public sealed class PeerException(string message, HttpStatusCode? status = null, Exception? inner = null) : Exception(message, inner)
{
    public HttpStatusCode? Status { get; } = status;
}

/// <summary>
/// Fetches blobs from peers over mutual TLS: this node's client certificate presented, the peer's serving certificate
/// checked against the cluster's server CA and its name against the address asked. Every step is bounded by the
/// peer timeout: connecting, the answer's headers, and each read of the body.
/// </summary>
internal sealed class PeerClient(Func<MemberCredentials> credentials, PeerMirrorOptions options) : IDisposable
{
    private readonly ConcurrentDictionary<string, (MemberCredentials Credentials, HttpClient Client)> _clients = new(StringComparer.Ordinal);

    /// <summary>
    /// GET of the blob from the peer at <paramref name="endpoint"/> (<c>host:port</c>): an unverified body with the
    /// size as Length. Throws <see cref="PeerException"/> when the peer does not answer 200 in time.
    /// </summary>
    public async Task<Stream> OpenBlobAsync(string endpoint, string registry, string repository, Digest digest, CancellationToken cancellationToken)
    {
        var response = await SendAsync(HttpMethod.Get, endpoint, $"/v2/{repository}/blobs/{digest}?ns={Uri.EscapeDataString(registry)}", cancellationToken).ConfigureAwait(false);
        try
        {
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new PeerException($"HTTP {(int)response.StatusCode}", response.StatusCode);
            }

            var size = response.Content.Headers.ContentLength ?? throw new PeerException("answered without a Content-Length");
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new BoundedBodyStream(body, size, options.PeerTimeout, options.Time, response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>
    /// HEAD of a manifest by tag at the peer at <paramref name="endpoint"/>: the descriptor the registry last gave it,
    /// null when it has none (404). Throws <see cref="PeerException"/> when the peer fails or does not answer in time.
    /// </summary>
    public async Task<MirrorTag?> ResolveTagAsync(string endpoint, string registry, string repository, string tag, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(HttpMethod.Head, endpoint, $"/v2/{repository}/manifests/{tag}?ns={Uri.EscapeDataString(registry)}", cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new PeerException($"HTTP {(int)response.StatusCode}", response.StatusCode);
        }

        return response.Headers.TryGetValues(RegistryHeaders.ContentDigest, out var values) && Digest.TryParse(values.FirstOrDefault(), out var digest)
            && response.Content.Headers is { ContentType.MediaType: { Length: > 0 } mediaType, ContentLength: { } size and > 0 }
            ? new MirrorTag(registry, repository, tag, digest, mediaType, size)
            : throw new PeerException("answered a tag without a digest, media type and size");
    }

    /// <summary>The request with its answer's headers bounded by the peer timeout (connecting and TLS included).</summary>
    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string endpoint, string pathAndQuery, CancellationToken cancellationToken)
    {
        var client = Client(endpoint);
        using var headers = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var timer = options.Time.CreateTimer(_ => BoundedBodyStream.Cancel(headers), null, options.PeerTimeout, Timeout.InfiniteTimeSpan);
        try
        {
            return await client.SendAsync(new HttpRequestMessage(method, new Uri($"https://{endpoint}{pathAndQuery}")), HttpCompletionOption.ResponseHeadersRead, headers.Token)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PeerException($"no answer within {options.PeerTimeout.TotalSeconds:0.###} s", null, ex);
        }
        catch (HttpRequestException ex)
        {
            throw new PeerException(ex.InnerException?.Message ?? ex.Message, null, ex);
        }
    }

    private HttpClient Client(string endpoint)
    {
        var current = credentials();
        if (_clients.TryGetValue(endpoint, out var cached) && ReferenceEquals(cached.Credentials, current))
        {
            return cached.Client;
        }

        // New credentials (a renewal) get a new handler; the old one is left to finish what it carries.
        var host = endpoint[..endpoint.LastIndexOf(':')].Trim('[', ']');
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.PeerTimeout,
            SslOptions = current.CreateClientOptions(host, options.Time),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            AutomaticDecompression = DecompressionMethods.None,
        };
        var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _clients[endpoint] = (current, client);
        return client;
    }

    public void Dispose()
    {
        foreach (var (_, client) in _clients.Values)
        {
            client.Dispose();
        }

        _clients.Clear();
    }
}
