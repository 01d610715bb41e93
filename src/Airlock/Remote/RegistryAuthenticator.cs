using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Airlock.Distribution;
using Microsoft.Extensions.Logging;

namespace Airlock.Remote;

/// <summary>
/// Answers registry challenges: remembers per registry whether it wants Basic or Bearer, fetches Bearer
/// tokens from the challenge's realm (anonymously, with Basic credentials, or with an identity token) and
/// caches them per scope set until shortly before they expire.
/// </summary>
internal sealed class RegistryAuthenticator : IDisposable
{
    private static readonly TimeSpan DefaultTokenLifetime = TimeSpan.FromSeconds(60);

    private readonly RegistryClient _client;
    private readonly RemoteOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, AuthChallenge> _challenges = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, CachedToken> _tokens = new(StringComparer.Ordinal);

    // Parallel blob requests that all miss the cache wait for one token fetch instead of each doing their own.
    private readonly SemaphoreSlim _fetching = new(1, 1);

    public RegistryAuthenticator(RegistryClient client, RemoteOptions options, ILogger logger)
    {
        _client = client;
        _options = options;
        _logger = logger;
    }

    /// <summary>The header to send pre-emptively, once the registry's challenge is known; null before that.</summary>
    public async ValueTask<AuthenticationHeaderValue?> AuthorizeAsync(RegistryCall call, CancellationToken cancellationToken)
    {
        if (!_challenges.TryGetValue(call.Registry, out var challenge))
        {
            return null;
        }

        if (challenge.IsBasic)
        {
            return FindCredential(call.Registry)?.BasicParameter is { } basic ? new AuthenticationHeaderValue("Basic", basic) : null;
        }

        var key = TokenKey(call.Registry, challenge, call.Scopes);
        if (Cached(key) is { } cached)
        {
            return new AuthenticationHeaderValue("Bearer", cached);
        }

        await _fetching.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Cached(key) is { } fetchedMeanwhile)
            {
                return new AuthenticationHeaderValue("Bearer", fetchedMeanwhile);
            }

            var token = await FetchTokenAsync(call, challenge, call.Scopes, cancellationToken).ConfigureAwait(false);
            _tokens[key] = token;
            return new AuthenticationHeaderValue("Bearer", token.Token);
        }
        finally
        {
            _fetching.Release();
        }
    }

    private string? Cached(string key) =>
        _tokens.TryGetValue(key, out var cached) && cached.ExpiresAt > _options.TimeProvider.GetUtcNow() ? cached.Token : null;

    /// <summary>Learns from a 401 and says whether re-sending with new authorization can help.</summary>
    public async ValueTask<bool> AcceptChallengeAsync(RegistryCall call, IReadOnlyList<AuthChallenge> challenges,
        AuthenticationHeaderValue? sent, CancellationToken cancellationToken)
    {
        var bearer = challenges.FirstOrDefault(c => c.IsBearer && !string.IsNullOrEmpty(c.Realm));
        var basic = challenges.FirstOrDefault(c => c.IsBasic);
        if (bearer is not null)
        {
            _challenges[call.Registry] = bearer;
            var key = TokenKey(call.Registry, bearer, call.Scopes);
            await _fetching.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                // Another request may have refreshed the token while this one was being refused.
                var sentToken = sent?.Scheme == "Bearer" ? sent.Parameter : null;
                if (Cached(key) is { } fresh && fresh != sentToken)
                {
                    return true;
                }

                // The server names the scope it wants; ask for it together with what the operation needs.
                var scopes = call.Scopes.Concat(SplitScopes(bearer.Scope)).Distinct(StringComparer.Ordinal).ToList();
                _tokens[key] = await FetchTokenAsync(call, bearer, scopes, cancellationToken).ConfigureAwait(false);
                return true;
            }
            finally
            {
                _fetching.Release();
            }
        }

        if (basic is not null)
        {
            _challenges[call.Registry] = basic;
            // Wrong Basic credentials do not get better by sending them again.
            return sent is null && FindCredential(call.Registry)?.BasicParameter is not null;
        }

        return false;
    }

    /// <summary>
    /// Why a registry still answers 401: it has no credentials to send (say where they go), or it refused the ones it got
    /// (say whose). Token servers that refuse credentials are explained the same way.
    /// </summary>
    public string ExplainRefusal(string registry)
    {
        return FindCredential(registry) switch
        {
            null => $"no credentials for {registry}: add configs.{registry}.auth in registries.yaml or --creds",
            { BasicPair: { } pair } => $"{registry} rejected the credentials for {pair.User}",
            _ => $"{registry} rejected the identity token in configs.{registry}.auth",
        };
    }

    private RegistryCredential? FindCredential(string registry) => RegistryHosts.Resolve(_options, registry).Credential;

    private async Task<CachedToken> FetchTokenAsync(RegistryCall call, AuthChallenge challenge, IReadOnlyList<string> scopes, CancellationToken cancellationToken)
    {
        var realm = challenge.Realm!;
        if (!Uri.TryCreate(realm, UriKind.Absolute, out var realmUri) || (realmUri.Scheme != Uri.UriSchemeHttps && realmUri.Scheme != Uri.UriSchemeHttp))
        {
            throw new RegistryException(call.Registry, call.Repository, call.Reference, HttpStatusCode.Unauthorized, [],
                $"token realm \"{realm}\" is not an http(s) URL");
        }

        RemoteLog.FetchingToken(_logger, realm, call.Registry, challenge.Service, string.Join(' ', scopes));
        var credential = FindCredential(call.Registry);
        var tokenCall = new RegistryCall
        {
            Registry = call.Registry,
            Repository = call.Repository,
            Reference = call.Reference,
            Method = HttpMethod.Get,
            Target = realm,
            UseRegistryAuth = false,
            BufferBody = true,
            MaxBody = 1024 * 1024,
        };
        if (!string.IsNullOrEmpty(credential?.IdentityToken))
        {
            // OAuth2 refresh-token grant, as Docker does with an identity token.
            var form = new List<KeyValuePair<string, string>>
            {
                new("grant_type", "refresh_token"),
                new("refresh_token", credential.IdentityToken),
                new("client_id", _options.UserAgent),
                new("service", challenge.Service ?? string.Empty),
                new("scope", string.Join(' ', scopes)),
            };
            tokenCall = tokenCall with { Method = HttpMethod.Post, Content = () => new FormUrlEncodedContent(form) };
        }
        else
        {
            var query = new List<string>();
            if (!string.IsNullOrEmpty(challenge.Service))
            {
                query.Add("service=" + Uri.EscapeDataString(challenge.Service));
            }

            query.AddRange(scopes.Select(s => "scope=" + Uri.EscapeDataString(s)));
            tokenCall = tokenCall with
            {
                Target = query.Count == 0 ? realm : realm + (realm.Contains('?', StringComparison.Ordinal) ? "&" : "?") + string.Join('&', query),
                Authorization = credential?.BasicParameter is { } basic ? new AuthenticationHeaderValue("Basic", basic) : null,
            };
        }

        using var response = await _client.SendAsync(tokenCall, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccess)
        {
            if (response.Status == HttpStatusCode.Unauthorized)
            {
                response.Explanation = ExplainRefusal(call.Registry);
            }

            throw RegistryClient.Failure(tokenCall, response, $"token server {realmUri.GetLeftPart(UriPartial.Path)} refused the request");
        }

        TokenResponse? parsed;
        try
        {
            parsed = TokenResponse.Parse(response.Body);
        }
        catch (JsonException ex)
        {
            throw new RegistryException(call.Registry, call.Repository, call.Reference, response.Status, [],
                $"token server {realmUri.GetLeftPart(UriPartial.Path)} answered with invalid JSON: {ex.Message}", ex);
        }

        var token = parsed?.Token is { Length: > 0 } t ? t : parsed?.AccessToken;
        if (string.IsNullOrEmpty(token))
        {
            throw new RegistryException(call.Registry, call.Repository, call.Reference, response.Status, [],
                $"token server {realmUri.GetLeftPart(UriPartial.Path)} returned neither \"token\" nor \"access_token\"");
        }

        var lifetime = parsed!.ExpiresIn is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : DefaultTokenLifetime;
        // Expiry runs on the local clock from receipt; issued_at is ignored so clock skew cannot shorten or stretch it.
        var now = _options.TimeProvider.GetUtcNow();
        // Refresh a little early so a token does not expire between being sent and being checked.
        var margin = lifetime / 10 < TimeSpan.FromSeconds(10) ? lifetime / 10 : TimeSpan.FromSeconds(10);
        return new CachedToken(token, now + lifetime - margin);
    }

    public void Dispose() => _fetching.Dispose();

    private static IEnumerable<string> SplitScopes(string? scope) =>
        string.IsNullOrWhiteSpace(scope) ? [] : scope.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string TokenKey(string registry, AuthChallenge challenge, IReadOnlyList<string> scopes) =>
        string.Join('\n', [registry, challenge.Realm ?? string.Empty, challenge.Service ?? string.Empty,
            .. scopes.Order(StringComparer.Ordinal)]);

    private sealed record CachedToken(string Token, DateTimeOffset ExpiresAt)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"token expiring {ExpiresAt:O}");
    }
}
