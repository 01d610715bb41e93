using Airlock.Distribution;
using Microsoft.AspNetCore.Http;

namespace Airlock.Registry.Auth;

/// <summary>How every endpoint of the registry (the /v2 API, the console, the JSON API) asks for access.</summary>
public static class AccessRequirement
{
    /// <summary>Asks <paramref name="access"/>; a refusal becomes the 401 (with its challenge) or 403 error.</summary>
    public static async ValueTask<AccessDecision> RequireAsync(this IAccessController access, HttpContext context, IReadOnlyList<AccessRequest> requested)
    {
        ArgumentNullException.ThrowIfNull(access);
        ArgumentNullException.ThrowIfNull(context);
        var decision = await access.AuthorizeAsync(context, requested, context.RequestAborted).ConfigureAwait(false);
        if (decision.IsAllowed)
        {
            return decision;
        }

        if (decision.Challenge is { } challenge)
        {
            throw new OciException(OciErrorCode.Unauthorized, decision.Detail)
            {
                Headers = [KeyValuePair.Create("WWW-Authenticate", challenge)],
            };
        }

        throw new OciException(OciErrorCode.Denied, decision.Detail);
    }
}
