using Microsoft.AspNetCore.Http;

namespace Airlock.Registry.Auth;

/// <summary>
/// Decides whether a request may perform the actions its route needs. The HTTP layer computes the
/// <see cref="AccessRequest"/>s from the route (GET/HEAD → pull, PUT/POST/PATCH → push (and pull on the
/// mount source), DELETE → delete, catalog → <c>registry:catalog:*</c>) and asks once per request.
/// </summary>
public interface IAccessController
{
    ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, IReadOnlyList<AccessRequest> requested, CancellationToken cancellationToken);

    /// <summary>
    /// The actions of <paramref name="request"/> that <paramref name="user"/> (as <see cref="AuthorizeAsync"/> let
    /// them in; null: anonymous) may perform, asked without a request: how the JSON API filters a listing down to
    /// what the user may pull, one repository at a time. A controller that cannot tell grants nothing.
    /// </summary>
    IReadOnlyList<string> Grant(string? user, AccessRequest request) => [];
}

/// <summary>One <c>type:name:actions</c> item, the unit of Docker/OCI token scopes.</summary>
/// <param name="Type"><c>repository</c> or <c>registry</c>.</param>
/// <param name="Name">A repository name, or <c>catalog</c>.</param>
/// <param name="Actions"><c>pull</c>, <c>push</c>, <c>delete</c> or <c>*</c>.</param>
public sealed record AccessRequest(string Type, string Name, IReadOnlyList<string> Actions)
{
    public static AccessRequest Repository(string name, params string[] actions) => new("repository", name, actions);

    public static AccessRequest Catalog() => new("registry", "catalog", ["*"]);

    /// <summary>The scope string as it appears in <c>WWW-Authenticate</c> and token requests.</summary>
    public string Scope => $"{Type}:{Name}:{string.Join(',', Actions)}";
}

/// <summary>The outcome: allowed (with the user, if any), a 401 challenge, or a 403 denial.</summary>
public sealed record AccessDecision
{
    private AccessDecision()
    {
    }

    public bool IsAllowed { get; private init; }

    /// <summary>The authenticated user, or null for anonymous access.</summary>
    public string? User { get; private init; }

    /// <summary>For a 401: the <c>WWW-Authenticate</c> header value.</summary>
    public string? Challenge { get; private init; }

    /// <summary>For a 401 or 403: the error detail for the OCI error body.</summary>
    public string? Detail { get; private init; }

    public static AccessDecision Allow(string? user) => new() { IsAllowed = true, User = user };

    public static AccessDecision Unauthorized(string challenge, string detail) => new() { Challenge = challenge, Detail = detail };

    public static AccessDecision Denied(string? user, string detail) => new() { User = user, Detail = detail };
}

/// <summary>No authentication configured: everyone may do everything.</summary>
public sealed class AllowAllAccessController : IAccessController
{
    public static readonly AllowAllAccessController Instance = new();

    public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, IReadOnlyList<AccessRequest> requested, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AccessDecision.Allow(null));

    public IReadOnlyList<string> Grant(string? user, AccessRequest request) => request.Actions;
}
