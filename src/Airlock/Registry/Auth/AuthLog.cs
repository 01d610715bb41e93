using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry.Auth;

/// <summary>Log events shared by the Basic controller and the token endpoint (the audit trail of logins).</summary>
internal static partial class AuthLog
{
    public static void RejectedCredentials(ILogger logger, string user, HttpContext context) =>
        RejectedCredentials(logger, user, context.Connection.RemoteIpAddress?.ToString() ?? "unknown");

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected credentials for user {User} from {RemoteAddress}")]
    private static partial void RejectedCredentials(ILogger logger, string user, string remoteAddress);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Issued token for {User} granting {Scopes}")]
    public static partial void IssuedToken(ILogger logger, string user, string scopes);
}
