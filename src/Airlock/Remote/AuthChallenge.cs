using System.Text;

namespace Airlock.Remote;

/// <summary>
/// One challenge of a <c>WWW-Authenticate</c> header (RFC 7235): a scheme (<c>Basic</c>, <c>Bearer</c>) and its
/// parameters, e.g. <c>Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull,push"</c>.
/// Parameter names are case-insensitive; values may be tokens or quoted strings with backslash escapes and commas.
/// </summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public bool IsBearer => string.Equals(Scheme, "Bearer", StringComparison.OrdinalIgnoreCase);

    public bool IsBasic => string.Equals(Scheme, "Basic", StringComparison.OrdinalIgnoreCase);

    public string? Realm => Parameters.GetValueOrDefault("realm");

    public string? Service => Parameters.GetValueOrDefault("service");

    public string? Scope => Parameters.GetValueOrDefault("scope");

    /// <summary>Parses every challenge of every header value given; malformed parts end that value's parsing.</summary>
    public static IReadOnlyList<AuthChallenge> Parse(IEnumerable<string> headerValues)
    {
        ArgumentNullException.ThrowIfNull(headerValues);
        var challenges = new List<AuthChallenge>();
        foreach (var value in headerValues)
        {
            ParseInto(value, challenges);
        }

        return challenges;
    }

    public static IReadOnlyList<AuthChallenge> Parse(string headerValue) => Parse([headerValue]);

    private static void ParseInto(string text, List<AuthChallenge> challenges)
    {
        var i = 0;
        Dictionary<string, string>? parameters = null;
        while (true)
        {
            SkipSpaceAndCommas(text, ref i);
            var token = ReadToken(text, ref i);
            if (token.Length == 0)
            {
                return;
            }

            SkipSpaces(text, ref i);
            if (parameters is not null && i < text.Length && text[i] == '=')
            {
                // name=value: a parameter of the current challenge.
                i++;
                SkipSpaces(text, ref i);
                string value;
                if (i < text.Length && text[i] == '"')
                {
                    if (!TryReadQuoted(text, ref i, out value))
                    {
                        return;
                    }
                }
                else
                {
                    value = ReadToken(text, ref i);
                }

                parameters[token] = value;
                continue;
            }

            // Anything else starts a new challenge; a token68 (Basic's base64 form) may follow its scheme.
            parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            challenges.Add(new AuthChallenge(token, parameters));
            SkipToken68(text, ref i);
        }
    }

    // "scheme abc==" or "scheme abc" followed by the end or a comma: skip the token68 so it is not read as a scheme.
    private static void SkipToken68(string text, ref int i)
    {
        var j = i;
        ReadToken(text, ref j);
        if (j == i)
        {
            return;
        }

        while (j < text.Length && text[j] == '=')
        {
            j++;
        }

        SkipSpaces(text, ref j);
        if (j >= text.Length || text[j] == ',')
        {
            i = j;
        }
    }

    private static void SkipSpaces(string text, ref int i)
    {
        while (i < text.Length && text[i] is ' ' or '\t')
        {
            i++;
        }
    }

    private static void SkipSpaceAndCommas(string text, ref int i)
    {
        while (i < text.Length && text[i] is ' ' or '\t' or ',')
        {
            i++;
        }
    }

    private static string ReadToken(string text, ref int i)
    {
        var start = i;
        while (i < text.Length && IsTokenChar(text[i]))
        {
            i++;
        }

        return text[start..i];
    }

    private static bool TryReadQuoted(string text, ref int i, out string value)
    {
        var builder = new StringBuilder();
        i++; // opening quote
        while (i < text.Length)
        {
            var c = text[i++];
            if (c == '"')
            {
                value = builder.ToString();
                return true;
            }

            if (c == '\\' && i < text.Length)
            {
                c = text[i++];
            }

            builder.Append(c);
        }

        value = string.Empty;
        return false;
    }

    // RFC 7230 tchar, plus '/' so unquoted realms such as https://host/token survive lenient servers.
    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~' or '/' or ':';
}
