using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Airlock.Registry.Auth;

/// <summary>User and password from an <c>Authorization: Basic</c> header.</summary>
internal readonly record struct BasicCredentials(string User, string Password)
{
    /// <summary>
    /// Null when the request has no Basic credentials at all; <paramref name="malformed"/> is set when it
    /// has a Basic header that cannot be decoded (treated like wrong credentials, not like none).
    /// </summary>
    public static BasicCredentials? From(HttpRequest request, out bool malformed)
    {
        malformed = false;
        var header = request.Headers[HeaderNames.Authorization].ToString();
        const string Scheme = "Basic ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[Scheme.Length..].Trim()));
            // containers/image (skopeo, podman) answers a Basic challenge with an empty user and password
            // when it has no credentials: an anonymous request, not a failed login.
            if (decoded == ":")
            {
                return null;
            }

            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                return new BasicCredentials(decoded[..colon], decoded[(colon + 1)..]);
            }
        }
        catch (FormatException)
        {
        }

        malformed = true;
        return null;
    }
}
