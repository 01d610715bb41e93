using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Airlock.Registry.Auth;

/// <summary>
/// Docker/OCI token authentication on /v2 requests: a request needs <c>Authorization: Bearer</c> with a
/// token from <see cref="TokenEndpoint"/> that grants the route's actions.
/// <list type="bullet">
/// <item>No token, or a token that is expired, tampered with or for another service → 401 with
/// <c>Bearer realm="…/token",service="airlock",scope="repository:&lt;name&gt;:pull,push"</c>, which sends
/// the client to fetch a token (anonymous requests the policy allows pass without one).</item>
/// <item>A valid token without the needed action, when the policy would grant it → 401 with
/// <c>error="insufficient_scope"</c>, so the client fetches a token with the wider scope.</item>
/// <item>The user is known but the policy does not allow the action → 403 DENIED.</item>
/// </list>
/// </summary>
public sealed class TokenAccessController(TokenAuthority authority, AccessPolicy policy) : IAccessController
{
    public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, IReadOnlyList<AccessRequest> requested, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Authorize(context, requested));

    public IReadOnlyList<string> Grant(string? user, AccessRequest request) => policy.Grant(user, request);

    private AccessDecision Authorize(HttpContext context, IReadOnlyList<AccessRequest> requested)
    {
        var header = context.Request.Headers[HeaderNames.Authorization].ToString();
        const string Scheme = "Bearer ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            // The /v2/ base check always challenges, so clients learn the realm and fetch a token (an
            // anonymous one with anonymous pull) — Docker Hub's behaviour, which every client expects.
            if (requested.Count > 0 && requested.All(r => Allowed(null, r)))
            {
                return AccessDecision.Allow(null);
            }

            return AccessDecision.Unauthorized(Challenge(context, requested, error: null), "authentication required");
        }

        if (!authority.TryValidate(header[Scheme.Length..].Trim(), out var claims, out var problem))
        {
            return AccessDecision.Unauthorized(Challenge(context, requested, "invalid_token"), problem);
        }

        foreach (var request in requested)
        {
            if (claims.Covers(request))
            {
                continue;
            }

            if (Allowed(claims.Subject, request))
            {
                return AccessDecision.Unauthorized(Challenge(context, requested, "insufficient_scope"), $"token does not grant {request.Scope}");
            }

            var detail = $"{request.Scope} is not allowed";
            return claims.Subject is null
                ? AccessDecision.Unauthorized(Challenge(context, requested, "insufficient_scope"), $"authentication required: {detail} without credentials")
                : AccessDecision.Denied(claims.Subject, $"{detail} for user {claims.Subject}");
        }

        return AccessDecision.Allow(claims.Subject);
    }

    private bool Allowed(string? user, AccessRequest request) => policy.Grant(user, request).Count == request.Actions.Count;

    private string Challenge(HttpContext context, IReadOnlyList<AccessRequest> requested, string? error)
    {
        var challenge = new StringBuilder("Bearer realm=\"")
            .Append(Realm(context.Request))
            .Append("\",service=\"")
            .Append(authority.Options.Service)
            .Append('"');
        if (requested.Count > 0)
        {
            challenge.Append(",scope=\"").AppendJoin(' ', requested.Select(r => r.Scope)).Append('"');
        }

        if (error is not null)
        {
            challenge.Append(",error=\"").Append(error).Append('"');
        }

        return challenge.ToString();
    }

    private string Realm(HttpRequest request) =>
        authority.Options.Realm?.ToString() ?? $"{request.Scheme}://{request.Host}{authority.Options.TokenPath}";
}
