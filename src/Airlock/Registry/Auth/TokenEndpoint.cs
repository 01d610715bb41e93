using System.Globalization;
using System.Text.Json;
using Airlock.Distribution;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace Airlock.Registry.Auth;

/// <summary>
/// The token endpoint of the Docker/OCI token flow (usually <c>/token</c>).
/// <list type="bullet">
/// <item><c>GET ?service=airlock&amp;scope=repository:a/b:pull,push&amp;scope=…</c> with optional Basic
/// credentials (docker, skopeo, podman).</item>
/// <item><c>POST</c> form <c>grant_type=password&amp;username=…&amp;password=…&amp;service=…&amp;scope=a b</c>
/// (the OAuth2 variant containerd tries first).</item>
/// </list>
/// Answers <c>{"token","access_token","expires_in","issued_at"}</c>. The token grants the intersection
/// of the requested scopes and what the <see cref="AccessPolicy"/> allows the user (or anonymous):
/// asking for more is not an error, the token simply carries fewer actions, as in distribution's token
/// servers. Wrong credentials → 401; malformed scope, unknown service or grant type → 400.
/// </summary>
public sealed class TokenEndpoint(TokenAuthority authority, HtpasswdFile users, AccessPolicy policy, ILogger<TokenEndpoint>? logger = null)
{
    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;

    /// <summary>The request handler; map it for GET and POST, or use <see cref="TokenEndpointRouteBuilderExtensions.MapRegistryTokenEndpoint"/>.</summary>
    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        string? user;
        StringValues service;
        List<string> scopes;
        if (HttpMethods.IsPost(request.Method))
        {
            if (!request.HasFormContentType)
            {
                await ErrorAsync(context, 400, "invalid_request", "expected an application/x-www-form-urlencoded body");
                return;
            }

            var form = await request.ReadFormAsync(context.RequestAborted);
            if (form["grant_type"] != "password")
            {
                await ErrorAsync(context, 400, "unsupported_grant_type", "only grant_type=password is supported");
                return;
            }

            user = form["username"].ToString();
            if (!users.Verify(user, form["password"].ToString()))
            {
                AuthLog.RejectedCredentials(_logger, user, context);
                await ErrorAsync(context, 401, "invalid_grant", "invalid username or password");
                return;
            }

            service = form["service"];
            scopes = SplitScopes(form["scope"]);
        }
        else if (HttpMethods.IsGet(request.Method))
        {
            var credentials = BasicCredentials.From(request, out var malformed);
            if (malformed || (credentials is { } c && !users.Verify(c.User, c.Password)))
            {
                AuthLog.RejectedCredentials(_logger, credentials?.User ?? "(malformed header)", context);
                context.Response.Headers.WWWAuthenticate = $"Basic realm=\"{BasicAccessController.Realm}\"";
                await ErrorAsync(context, 401, "UNAUTHORIZED", "invalid username or password");
                return;
            }

            user = credentials?.User;
            service = request.Query["service"];
            scopes = SplitScopes(request.Query["scope"]);
        }
        else
        {
            context.Response.Headers.Allow = "GET, POST";
            await ErrorAsync(context, 405, "UNSUPPORTED", "use GET or POST");
            return;
        }

        if (!StringValues.IsNullOrEmpty(service) && service != authority.Options.Service)
        {
            await ErrorAsync(context, 400, "invalid_request", $"unknown service \"{service}\" (this registry is \"{authority.Options.Service}\")");
            return;
        }

        var granted = new List<AccessRequest>();
        foreach (var scope in scopes)
        {
            if (!TryParseScope(scope, out var requested))
            {
                await ErrorAsync(context, 400, "invalid_scope", $"malformed scope \"{scope}\" (expected type:name:actions)");
                return;
            }

            var actions = policy.Grant(user, requested);
            if (actions.Count > 0)
            {
                granted.Add(requested with { Actions = actions });
            }
        }

        var token = authority.Issue(user, granted);
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            AuthLog.IssuedToken(_logger, user ?? "(anonymous)", string.Join(' ', granted.Select(g => g.Scope)));
        }
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        var answer = new TokenResponse
        {
            Token = token.Token,
            AccessToken = token.Token,
            ExpiresIn = (int)token.ExpiresIn.TotalSeconds,
            IssuedAt = token.IssuedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        };
        await answer.WriteAsync(context.Response.Body, context.RequestAborted);
    }

    /// <summary>
    /// Parses <c>type[(class)]:name:action,action</c>. The name may itself hold colons (a registry host
    /// with a port), so type is up to the first colon and actions after the last.
    /// </summary>
    internal static bool TryParseScope(string scope, out AccessRequest request)
    {
        request = null!;
        var first = scope.IndexOf(':', StringComparison.Ordinal);
        var last = scope.LastIndexOf(':');
        if (first <= 0 || last == first || last == scope.Length - 1 || last - first < 2)
        {
            return false;
        }

        var type = scope[..first];
        var resourceClass = type.IndexOf('(', StringComparison.Ordinal);
        if (resourceClass > 0)
        {
            type = type[..resourceClass];
        }

        var actions = scope[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (actions.Length == 0)
        {
            return false;
        }

        request = new AccessRequest(type, scope[(first + 1)..last], actions);
        return true;
    }

    private static List<string> SplitScopes(StringValues values) =>
        [.. values.SelectMany(v => (v ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))];

    private static async Task ErrorAsync(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartObject();
        json.WriteString("error", code);
        json.WriteString("error_description", message);
        json.WriteStartArray("errors");
        json.WriteStartObject();
        json.WriteString("code", status == 401 ? "UNAUTHORIZED" : code.ToUpperInvariant());
        json.WriteString("message", message);
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted);
    }
}

public static class TokenEndpointRouteBuilderExtensions
{
    /// <summary>Maps GET and POST <paramref name="pattern"/> (default <c>/token</c>) to the token endpoint.</summary>
    public static IEndpointConventionBuilder MapRegistryTokenEndpoint(this IEndpointRouteBuilder endpoints, TokenEndpoint tokenEndpoint, string pattern = "/token") =>
        endpoints.MapMethods(pattern, [HttpMethods.Get, HttpMethods.Post], tokenEndpoint.HandleAsync);
}
