using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Airlock.Conformance.Tests.Harness;

/// <summary>
/// The HTTP client the checks use, with the behaviour of the upstream suite's client (reggie on resty):
/// <c>&lt;name&gt;</c>/<c>&lt;reference&gt;</c>/<c>&lt;digest&gt;</c> placeholders in paths, query parameters
/// appended to a Location that may already carry its own, redirects followed, Basic or Bearer-token
/// challenges answered when OCI_USERNAME/OCI_PASSWORD are given, and a request/response trace with OCI_DEBUG.
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string? _username;
    private readonly string? _password;
    private readonly bool _debug;
    private AuthenticationHeaderValue? _lastAuthorization;

    public RegistryClient(Uri rootUrl, string defaultName, string? username, string? password, bool debug)
    {
        RootUrl = rootUrl;
        DefaultName = defaultName;
        _username = username;
        _password = password;
        _debug = debug;
        var handler = new SocketsHttpHandler { AllowAutoRedirect = true, UseCookies = false };
        // Upstream sets InsecureSkipTLSVerify so the suite runs against registries with self-signed certificates.
#pragma warning disable CA5359
        handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
#pragma warning restore CA5359
        _http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("distribution-spec-conformance-tests");
    }

    public Uri RootUrl { get; }

    /// <summary>The repository that <c>&lt;name&gt;</c> stands for (OCI_NAMESPACE).</summary>
    public string DefaultName { get; }

    /// <summary>Where OCI_DEBUG traces go: the output of the test running now.</summary>
    public ITestOutputHelper? Output { get; set; }

    public RegistryRequest NewRequest(HttpMethod method, string path, string? name = null, string? reference = null, string? digest = null)
    {
        var resolved = path
            .Replace("<name>", name ?? DefaultName, StringComparison.Ordinal)
            .Replace("<reference>", reference ?? string.Empty, StringComparison.Ordinal)
            .Replace("<digest>", digest ?? string.Empty, StringComparison.Ordinal);
        return new RegistryRequest(method, resolved);
    }

    public async Task<RegistryResponse> SendAsync(RegistryRequest request)
    {
        var url = request.Url(RootUrl);
        using var first = request.ToHttpRequest(url, _lastAuthorization);
        var response = await ExchangeAsync(first);
        if (response.StatusCode == 401 && _username is not null)
        {
            var authorization = await AnswerChallengeAsync(response.Header("WWW-Authenticate"));
            if (authorization is not null)
            {
                using var retry = request.ToHttpRequest(url, authorization);
                response = await ExchangeAsync(retry);
                // Sent up front next time: one round trip (and one password check) per request instead of two.
                _lastAuthorization = response.StatusCode == 401 ? null : authorization;
            }
        }

        return response;
    }

    public void Dispose() => _http.Dispose();

    private async Task<RegistryResponse> ExchangeAsync(HttpRequestMessage message)
    {
        Trace($"--> {message.Method} {message.RequestUri}");
        using var response = await _http.SendAsync(message);
        var body = await response.Content.ReadAsByteArrayAsync();
        var headers = response.Headers.Concat(response.Content.Headers)
            .GroupBy(h => h.Key, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.SelectMany(h => h.Value).ToArray(), StringComparer.OrdinalIgnoreCase);
        var result = new RegistryResponse(message.Method, response.RequestMessage?.RequestUri ?? message.RequestUri!, (int)response.StatusCode, headers, body);
        if (_debug)
        {
            Trace($"<-- {result.StatusCode}\n{string.Join('\n', headers.Select(h => $"{h.Key}: {string.Join(", ", h.Value)}"))}\n{result.BodyPreview()}");
        }

        return result;
    }

    /// <summary>Answers a Basic or Bearer challenge the way reggie does (token from the realm with the user's credentials).</summary>
    private async Task<AuthenticationHeaderValue?> AnswerChallengeAsync(string? challenge)
    {
        var basic = new AuthenticationHeaderValue(
            "Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_username}:{_password}")));
        if (challenge is null || challenge.StartsWith("Basic", StringComparison.OrdinalIgnoreCase))
        {
            return basic;
        }

        if (!challenge.StartsWith("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var parameters = ChallengeParameters(challenge["Bearer".Length..]);
        if (!parameters.TryGetValue("realm", out var realm))
        {
            return null;
        }

        var query = string.Join('&', parameters.Where(p => p.Key is "service" or "scope")
            .Select(p => $"{p.Key}={Uri.EscapeDataString(p.Value)}"));
        using var tokenRequest = new HttpRequestMessage(HttpMethod.Get, query.Length == 0 ? realm : $"{realm}?{query}");
        tokenRequest.Headers.Authorization = basic;
        using var tokenResponse = await _http.SendAsync(tokenRequest);
        if (!tokenResponse.IsSuccessStatusCode)
        {
            return null;
        }

        using var document = JsonDocument.Parse(await tokenResponse.Content.ReadAsByteArrayAsync());
        foreach (var property in new[] { "token", "access_token" })
        {
            if (document.RootElement.TryGetProperty(property, out var token) && token.GetString() is { Length: > 0 } value)
            {
                return new AuthenticationHeaderValue("Bearer", value);
            }
        }

        return null;
    }

    private static Dictionary<string, string> ChallengeParameters(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i])))
            {
                i++;
            }

            var equals = text.IndexOf('=', i);
            if (equals < 0)
            {
                break;
            }

            var key = text[i..equals].Trim();
            i = equals + 1;
            string value;
            if (i < text.Length && text[i] == '"')
            {
                var close = text.IndexOf('"', i + 1);
                close = close < 0 ? text.Length : close;
                value = text[(i + 1)..close];
                i = close + 1;
            }
            else
            {
                var comma = text.IndexOf(',', i);
                comma = comma < 0 ? text.Length : comma;
                value = text[i..comma].Trim();
                i = comma;
            }

            result[key] = value;
        }

        return result;
    }

    private void Trace(string line)
    {
        if (_debug)
        {
            Output?.WriteLine(line);
        }
    }
}

/// <summary>One request, built fluently like the upstream suite's; re-creatable for an authentication retry.</summary>
public sealed class RegistryRequest
{
    private readonly List<KeyValuePair<string, string>> _query = [];
    private readonly Dictionary<string, string> _headers = new(StringComparer.OrdinalIgnoreCase);
    private byte[]? _body;

    internal RegistryRequest(HttpMethod method, string pathAndQuery)
    {
        Method = method;
        PathAndQuery = pathAndQuery;
    }

    public HttpMethod Method { get; }

    public string PathAndQuery { get; }

    public RegistryRequest WithQuery(string key, string value)
    {
        _query.Add(new(key, value));
        return this;
    }

    /// <summary>
    /// Sets a header. Content-Length is not sent as given: like Go's client, the real length of the body
    /// is what goes on the wire (upstream sets it to the blob's length on a PUT whose body is empty).
    /// </summary>
    public RegistryRequest WithHeader(string name, string value)
    {
        _headers[name] = value;
        return this;
    }

    public RegistryRequest WithBody(byte[] content)
    {
        _body = content;
        return this;
    }

    internal Uri Url(Uri root)
    {
        var target = PathAndQuery;
        if (_query.Count > 0)
        {
            var encoded = string.Join('&', _query.Select(p => $"{Uri.EscapeDataString(p.Key)}={Uri.EscapeDataString(p.Value)}"));
            target += (target.Contains('?', StringComparison.Ordinal) ? "&" : "?") + encoded;
        }

        return Uri.TryCreate(target, UriKind.Absolute, out var absolute) && absolute.Scheme.StartsWith("http", StringComparison.Ordinal)
            ? absolute
            : new Uri(root, target);
    }

    internal HttpRequestMessage ToHttpRequest(Uri url, AuthenticationHeaderValue? authorization)
    {
        var message = new HttpRequestMessage(Method, url);
        // Go sends a body (Content-Length: 0 when empty) on every POST/PUT/PATCH; GET carries one only when set.
        if (_body is not null || Method == HttpMethod.Post || Method == HttpMethod.Put || Method == HttpMethod.Patch)
        {
            message.Content = new ByteArrayContent(_body ?? []);
        }

        foreach (var (name, value) in _headers)
        {
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
            {
                message.Content ??= new ByteArrayContent([]);
                message.Content.Headers.TryAddWithoutValidation(name, value);
            }
            else
            {
                message.Headers.TryAddWithoutValidation(name, value);
            }
        }

        message.Headers.Authorization = authorization;
        return message;
    }
}

/// <summary>A response read whole (the suite's blobs and manifests are tiny).</summary>
public sealed class RegistryResponse
{
    private readonly IReadOnlyDictionary<string, string[]> _headers;

    internal RegistryResponse(HttpMethod method, Uri url, int statusCode, IReadOnlyDictionary<string, string[]> headers, byte[] body)
    {
        Method = method;
        Url = url;
        StatusCode = statusCode;
        _headers = headers;
        Body = body;
    }

    public HttpMethod Method { get; }

    public Uri Url { get; }

    public int StatusCode { get; }

    public byte[] Body { get; }

    /// <summary>The first value of a header, or "" when absent (Go's Header.Get).</summary>
    public string Header(string name) => _headers.TryGetValue(name, out var values) && values.Length > 0 ? values[0] : string.Empty;

    /// <summary>The Location header as a path and query, resolving an absolute URL (reggie's GetRelativeLocation).</summary>
    public string RelativeLocation()
    {
        var location = Header("Location");
        return Uri.TryCreate(location, UriKind.Absolute, out var absolute) && absolute.Scheme.StartsWith("http", StringComparison.Ordinal)
            ? absolute.PathAndQuery
            : location;
    }

    /// <summary>The Location header resolved against the request URL (reggie's GetAbsoluteLocation).</summary>
    public string AbsoluteLocation()
    {
        var location = Header("Location");
        return location.Length == 0 ? string.Empty : new Uri(Url, location).ToString();
    }

    /// <summary>The <c>errors</c> array of an OCI error body; throws when the body is not one.</summary>
    public IReadOnlyList<string> ErrorCodes()
    {
        using var document = JsonDocument.Parse(Body);
        return document.RootElement.GetProperty("errors").EnumerateArray()
            .Select(e => e.GetProperty("code").GetString() ?? string.Empty)
            .ToList();
    }

    public string BodyPreview()
    {
        var text = Encoding.UTF8.GetString(Body);
        return text.Length <= 1000 ? text : text[..1000] + "…";
    }

    public override string ToString() => $"{Method} {Url} -> {StatusCode} {BodyPreview()}";
}
