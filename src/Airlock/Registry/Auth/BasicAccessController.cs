using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Registry.Auth;

/// <summary>
/// HTTP Basic authentication against an htpasswd file (<c>--htpasswd FILE</c>), with authorisation from
/// an <see cref="AccessPolicy"/> (<c>--access FILE</c>, <c>--anonymous-pull</c>).
/// <list type="bullet">
/// <item>Missing or wrong credentials → 401 with <c>WWW-Authenticate: Basic realm="Airlock Registry"</c>
/// (anonymous requests the policy allows, e.g. pulls with <c>--anonymous-pull</c>, pass without).</item>
/// <item>Valid credentials but an action the policy does not give the user → 403 DENIED.</item>
/// </list>
/// </summary>
public sealed class BasicAccessController(HtpasswdFile users, AccessPolicy policy, ILogger<BasicAccessController>? logger = null) : IAccessController
{
    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;

    public const string Realm = "Airlock Registry";

    private const string Challenge = $"Basic realm=\"{Realm}\"";

    public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, IReadOnlyList<AccessRequest> requested, CancellationToken cancellationToken)
    {
        var credentials = BasicCredentials.From(context.Request, out var malformed);
        if (malformed)
        {
            return Done(AccessDecision.Unauthorized(Challenge, "malformed Basic credentials"));
        }

        string? user = null;
        if (credentials is { } c)
        {
            if (!users.Verify(c.User, c.Password))
            {
                AuthLog.RejectedCredentials(_logger, c.User, context);
                return Done(AccessDecision.Unauthorized(Challenge, "invalid username or password"));
            }

            user = c.User;
        }

        if (requested.Count == 0)
        {
            // The /v2/ base check: clients probe it to learn whether and how to authenticate. It challenges
            // even with anonymous pull (as Docker Hub does): a client that got 200 here never sends its
            // credentials, so skopeo or podman with a password could then not push.
            return Done(user is not null
                ? AccessDecision.Allow(user)
                : AccessDecision.Unauthorized(Challenge, "authentication required"));
        }

        foreach (var request in requested)
        {
            var granted = policy.Grant(user, request);
            var missing = request.Actions.Where(a => !granted.Contains(a)).ToList();
            if (missing.Count == 0)
            {
                continue;
            }

            var detail = $"{string.Join(',', missing)} on {request.Type} {request.Name} is not allowed";
            return Done(user is null
                ? AccessDecision.Unauthorized(Challenge, $"authentication required: {detail} without credentials")
                : AccessDecision.Denied(user, $"{detail} for user {user}"));
        }

        return Done(AccessDecision.Allow(user));
    }

    public IReadOnlyList<string> Grant(string? user, AccessRequest request) => policy.Grant(user, request);

    private static ValueTask<AccessDecision> Done(AccessDecision decision) => ValueTask.FromResult(decision);
}
