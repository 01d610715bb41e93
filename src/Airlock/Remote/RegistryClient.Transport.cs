using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using Airlock.Distribution;

namespace Airlock.Remote;

public sealed partial class RegistryClient
{
    private const int MaxErrorBody = 64 * 1024;

    private readonly ConcurrentDictionary<string, Uri> _baseAddresses = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The base address in use for a registry (after any fallback to plain HTTP).</summary>
    public Uri BaseAddress(string registry) =>
        _baseAddresses.GetOrAdd(registry, static (name, options) => RegistryHosts.Resolve(options, name).BaseAddresses[0], _options);

    /// <summary>
    /// Sends a call with authentication (one re-send after a 401 challenge), insecure HTTP fallback and bounded
    /// retries with backoff for transient failures. Returns any final answer, successful or not.
    /// </summary>
    internal async Task<RegistryResponse> SendAsync(RegistryCall call, CancellationToken cancellationToken)
    {
        var attempt = 0;
        var challenged = false;
        var fellBack = false;
        while (true)
        {
            attempt++;
            var baseAddress = BaseAddress(call.Registry);
            using var request = BuildRequest(call, baseAddress);
            var sent = call.Authorization ?? (call.UseRegistryAuth ? await _auth.AuthorizeAsync(call, cancellationToken).ConfigureAwait(false) : null);
            request.Headers.Authorization = sent;

            RegistryResponse response;
            try
            {
                response = await ExchangeAsync(request, call, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException ex) when (!fellBack && HttpFallback(call, baseAddress, ex) is { } http)
            {
                fellBack = true;
                if (await UsePlainHttpAsync(call, baseAddress, http, ex, cancellationToken).ConfigureAwait(false))
                {
                    attempt--;
                    continue;
                }

                throw SendFailure(call, request, attempt, ex);
            }
            catch (Exception ex) when (IsTransient(ex, cancellationToken) && call.Replayable && attempt < _options.MaxAttempts)
            {
                await DelayAsync(call, request.RequestUri!, attempt, Backoff(attempt), ex.Message, cancellationToken).ConfigureAwait(false);
                continue;
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or TimeoutException
                || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                throw SendFailure(call, request, attempt, ex);
            }

            RemoteLog.Answered(_logger, call.Method.Method, request.RequestUri!, call.Registry, response.Status);
            if (response.Status == HttpStatusCode.Unauthorized && !challenged && call.Replayable && call.UseRegistryAuth && call.Authorization is null)
            {
                challenged = true;
                var challenges = AuthChallenge.Parse(response.Message.Headers.NonValidated["WWW-Authenticate"]);
                if (await _auth.AcceptChallengeAsync(call, challenges, sent, cancellationToken).ConfigureAwait(false))
                {
                    response.Dispose();
                    attempt--;
                    continue;
                }
            }

            if (response.Status == HttpStatusCode.Unauthorized && call.UseRegistryAuth && call.Authorization is null)
            {
                response.Explanation = _auth.ExplainRefusal(call.Registry);
            }

            if (IsTransient(response.Status) && call.Replayable && attempt < _options.MaxAttempts)
            {
                var delay = RetryAfter(response) ?? Backoff(attempt);
                response.Dispose();
                await DelayAsync(call, request.RequestUri!, attempt, delay, $"HTTP {(int)response.Status}", cancellationToken).ConfigureAwait(false);
                continue;
            }

            return response;
        }
    }

    /// <summary>The answer as a <see cref="RegistryException"/> naming the registry, repository and reference.</summary>
    internal static RegistryException Failure(RegistryCall call, RegistryResponse response, string? detail = null) =>
        new(call.Registry, call.Repository, call.Reference, response.Status, ErrorBody.Parse(response.Body),
            response.Explanation is null ? detail : detail is null ? response.Explanation : $"{detail}: {response.Explanation}");

    /// <summary>What to change when <paramref name="registry"/>'s certificate was refused, in registries.yaml's and the flags' terms.</summary>
    private static string ExplainCertificate(string registry, string host, System.Net.Security.SslPolicyErrors errors, bool ownCa)
    {
        if (errors.HasFlag(System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return $"{registry}'s certificate does not name {host}: use a name the certificate was issued for, or reissue it with this one "
                + $"(--tls-san for Airlock's own), or set configs.{registry}.tls.insecure_skip_verify, or --insecure";
        }

        if (errors.HasFlag(System.Net.Security.SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return $"{registry} sent no certificate";
        }

        return ownCa
            ? $"{registry}'s certificate is not signed by the CA in configs.{registry}.tls.ca_file: give that file the CA that issued it, or --insecure"
            : $"{registry}'s certificate is not signed by a trusted CA: set configs.{registry}.tls.ca_file, or --insecure";
    }

    private HttpRequestMessage BuildRequest(RegistryCall call, Uri baseAddress)
    {
        var request = new HttpRequestMessage(call.Method, new Uri(baseAddress, call.Target))
        {
            // HTTP/2 when TLS negotiates it, HTTP/1.1 otherwise (and always on plain HTTP).
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };
        request.Headers.UserAgent.ParseAdd(_options.UserAgent);
        if (call.Accept is { } accept)
        {
            foreach (var mediaType in accept)
            {
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mediaType));
            }
        }

        if (call.Range is { } range)
        {
            request.Headers.Range = range;
        }
        else if (call.RangeFrom is { } from)
        {
            request.Headers.Range = new RangeHeaderValue(from, null);
        }

        if (call.Content is { } content)
        {
            request.Content = content();
        }

        return request;
    }

    private async Task<RegistryResponse> ExchangeAsync(HttpRequestMessage request, RegistryCall call, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_options.ResponseTimeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        HttpResponseMessage? message = null;
        try
        {
            message = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            byte[] body = [];
            if (!message.IsSuccessStatusCode)
            {
                body = await ReadCappedAsync(message.Content, MaxErrorBody, truncate: true, call, linked.Token).ConfigureAwait(false);
            }
            else if (call.BufferBody)
            {
                body = await ReadCappedAsync(message.Content, call.MaxBody, truncate: false, call, linked.Token).ConfigureAwait(false);
            }

            return new RegistryResponse(message, body);
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            message?.Dispose();
            throw new TimeoutException($"no response within {_options.ResponseTimeout.TotalSeconds:0.###} s", ex);
        }
        catch
        {
            message?.Dispose();
            throw;
        }
    }

    private static async Task<byte[]> ReadCappedAsync(HttpContent content, int max, bool truncate, RegistryCall call, CancellationToken cancellationToken)
    {
        if (!truncate && content.Headers.ContentLength > max)
        {
            throw TooLarge(call, max);
        }

        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(max + 1, 1024 * 1024));
            try
            {
                using var collected = new MemoryStream();
                while (true)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, max + 1 - collected.Length)), cancellationToken).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    collected.Write(buffer, 0, n);
                    if (collected.Length > max)
                    {
                        if (truncate)
                        {
                            collected.SetLength(max);
                            break;
                        }

                        throw TooLarge(call, max);
                    }
                }

                return collected.ToArray();
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private static RegistryException TooLarge(RegistryCall call, int max) =>
        new(call.Registry, call.Repository, call.Reference, null, [], $"response body is larger than the {max} bytes allowed");

    /// <summary>
    /// A request that got no answer, as a <see cref="RegistryException"/> naming the registry and what was sent; a
    /// certificate this client refused is explained in words that say what to change.
    /// </summary>
    private RegistryException SendFailure(RegistryCall call, HttpRequestMessage request, int attempt, Exception ex)
    {
        if (ex is HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError }
            && _tls.Rejection(request.RequestUri!.IdnHost) is { } rejection)
        {
            return new RegistryException(call.Registry, call.Repository, call.Reference, null, [],
                ExplainCertificate(call.Registry, request.RequestUri.IdnHost, rejection.Errors, rejection.OwnCa), ex);
        }

        return new(call.Registry, call.Repository, call.Reference, null, [], $"{call.Method} {request.RequestUri} failed after {attempt} attempt(s): {Describe(ex)}", ex);
    }

    /// <summary>The plain-HTTP address to try after <paramref name="baseAddress"/> failed to set up TLS, when the registry allows one.</summary>
    private Uri? HttpFallback(RegistryCall call, Uri baseAddress, HttpRequestException ex)
    {
        if (baseAddress.Scheme != Uri.UriSchemeHttps || ex.HttpRequestError != HttpRequestError.SecureConnectionError || IsAbsoluteHttp(call.Target))
        {
            return null;
        }

        var addresses = RegistryHosts.Resolve(_options, call.Registry).BaseAddresses;
        return addresses.Count > 1 && addresses[0] == baseAddress ? addresses[1] : null;
    }

    /// <summary>
    /// Switches the registry to plain HTTP after TLS failed: always with <c>--insecure</c>; on loopback (containerd's rule:
    /// HTTPS first, then HTTP) only when the server presents no certificate at all, so a registry that speaks TLS with a
    /// certificate this client does not trust is reported as that, not as a failed plain-HTTP request.
    /// </summary>
    private async Task<bool> UsePlainHttpAsync(RegistryCall call, Uri baseAddress, Uri http, HttpRequestException ex, CancellationToken cancellationToken)
    {
        if (_options.Insecure)
        {
            RemoteLog.FallingBackToHttp(_logger, call.Registry, ex.Message);
        }
        else if (await PresentsCertificateAsync(baseAddress, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }
        else
        {
            RemoteLog.LoopbackPlainHttp(_logger, call.Registry);
        }

        _baseAddresses[call.Registry] = http;
        return true;
    }

    /// <summary>Whether the server at <paramref name="address"/> answers a TLS handshake with a certificate (any certificate).</summary>
    private async Task<bool> PresentsCertificateAsync(Uri address, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ConnectTimeout);
        var presented = false;
        try
        {
            using var tcp = new System.Net.Sockets.TcpClient();
            await tcp.ConnectAsync(address.IdnHost, address.Port, timeout.Token).ConfigureAwait(false);
            var tls = new System.Net.Security.SslStream(tcp.GetStream());
            await using (tls.ConfigureAwait(false))
            {
                await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
                {
                    TargetHost = address.IdnHost,
                    // Only looked at, never trusted: the handshake is abandoned either way.
                    RemoteCertificateValidationCallback = (_, certificate, _, _) => (presented = certificate is not null) && false,
                }, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception probe) when (probe is IOException or System.Security.Authentication.AuthenticationException
            or System.Net.Sockets.SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // No handshake: what matters is only whether a certificate was seen before it ended.
        }

        return presented;
    }

    // On Unix "/v2/..." parses as an absolute file URI, so look at the scheme, not at absoluteness.
    private static bool IsAbsoluteHttp(string target) =>
        Uri.TryCreate(target, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    /// <summary>
    /// Connection refused/reset, a response cut short: worth another attempt. A connect timeout, a response
    /// timeout, name resolution and TLS failures are not — they would only multiply the time to give up.
    /// </summary>
    internal static bool IsTransient(Exception ex, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return false;
        }

        return ex switch
        {
            HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } h => h.InnerException is not TimeoutException,
            HttpRequestException { HttpRequestError: HttpRequestError.ResponseEnded or HttpRequestError.HttpProtocolError } => true,
            HttpRequestException { HttpRequestError: HttpRequestError.Unknown, InnerException: IOException } => true,
            HttpRequestException => false,
            TimeoutException => false,
            IOException => true,
            _ => false,
        };
    }

    internal static bool IsTransient(HttpStatusCode status) => status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests
        or HttpStatusCode.InternalServerError or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    private TimeSpan Backoff(int attempt)
    {
        var exponential = _options.RetryBaseDelay * Math.Pow(2, attempt - 1);
        var capped = exponential < _options.MaxRetryDelay ? exponential : _options.MaxRetryDelay;
        // "Equal jitter": at least half the backoff, so clients that failed together do not retry together.
        return capped / 2 + capped / 2 * Random.Shared.NextDouble();
    }

    private TimeSpan? RetryAfter(RegistryResponse response)
    {
        if (response.Message.Headers.RetryAfter is not { } retryAfter)
        {
            return null;
        }

        var delay = retryAfter.Delta ?? (retryAfter.Date is { } date ? date - _options.TimeProvider.GetUtcNow() : TimeSpan.Zero);
        if (delay < TimeSpan.Zero)
        {
            delay = TimeSpan.Zero;
        }

        return delay < _options.MaxRetryDelay ? delay : _options.MaxRetryDelay;
    }

    private async Task DelayAsync(RegistryCall call, Uri url, int attempt, TimeSpan delay, string failure, CancellationToken cancellationToken)
    {
        RemoteLog.Retrying(_logger, call.Method.Method, url, call.Registry, failure, attempt + 1, _options.MaxAttempts, delay);
        await Task.Delay(delay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
    }

    private static string Describe(Exception ex) =>
        ex.InnerException is { } inner && !string.Equals(inner.Message, ex.Message, StringComparison.Ordinal)
            ? $"{ex.Message} ({inner.Message})"
            : ex.Message;
}
