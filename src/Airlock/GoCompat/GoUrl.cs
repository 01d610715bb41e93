using System.Text;

namespace Airlock.GoCompat;

/// <summary>
/// A URL parsed and printed the way Go's <c>net/url</c> does. K3s compares, de-duplicates and writes registry
/// endpoints as <c>url.URL.String()</c>, and skips the ones <c>url.Parse</c> rejects; System.Uri accepts and
/// rewrites different strings (it lower-cases hosts, adds trailing slashes, accepts <c>host:abc</c>), so the
/// byte-for-byte output of hosts.toml needs Go's rules.
/// </summary>
internal sealed class GoUrl
{
    public string Scheme { get; set; } = string.Empty;

    public string Opaque { get; private init; } = string.Empty;

    /// <summary>The raw <c>user[:password]</c> part before <c>@</c>, or null when there is none.</summary>
    public string? UserInfo { get; private init; }

    /// <summary>Host with optional <c>:port</c>, IPv6 literals in brackets.</summary>
    public string Host { get; set; } = string.Empty;

    /// <summary>The decoded path.</summary>
    public string Path { get; private set; } = string.Empty;

    private string _rawPath = string.Empty;

    public string RawQuery { get; private init; } = string.Empty;

    private bool _forceQuery;

    private string _fragment = string.Empty;

    private string _rawFragment = string.Empty;

    /// <summary>Sets the decoded path and forgets the original spelling, as assigning <c>u.Path</c> in Go does.</summary>
    public void SetDecodedPath(string path) => Path = path;

    /// <summary>The port after the last colon, or empty (Go <c>URL.Port</c>).</summary>
    public string Port
    {
        get
        {
            var colon = Host.LastIndexOf(':');
            return colon != -1 && ValidOptionalPort(Host.AsSpan(colon)) ? Host[(colon + 1)..] : string.Empty;
        }
    }

    public static bool TryParse(string raw, out GoUrl url, out string error)
    {
        url = new GoUrl();
        var hash = raw.IndexOf('#');
        var withoutFragment = hash < 0 ? raw : raw[..hash];
        if (!TryParseWithoutFragment(withoutFragment, out var parsed, out error))
        {
            return false;
        }

        if (hash >= 0)
        {
            var fragment = raw[(hash + 1)..];
            if (!TryUnescape(fragment, Encoding.Fragment, out var decoded, out error))
            {
                return false;
            }

            parsed._fragment = decoded;
            parsed._rawFragment = Escape(decoded, Encoding.Fragment) == fragment ? string.Empty : fragment;
        }

        url = parsed;
        return true;
    }

    private static bool TryParseWithoutFragment(string raw, out GoUrl url, out string error)
    {
        url = new GoUrl();
        if (raw.Any(c => c < 0x20 || c == 0x7f))
        {
            error = "net/url: invalid control character in URL";
            return false;
        }

        if (raw == "*")
        {
            url = new GoUrl { Path = "*" };
            error = string.Empty;
            return true;
        }

        if (!TryGetScheme(raw, out var scheme, out var rest, out error))
        {
            return false;
        }

        scheme = scheme.ToLowerInvariant();
        var forceQuery = false;
        var rawQuery = string.Empty;
        if (rest.EndsWith('?') && rest.Count(c => c == '?') == 1)
        {
            forceQuery = true;
            rest = rest[..^1];
        }
        else
        {
            var q = rest.IndexOf('?');
            if (q >= 0)
            {
                rawQuery = rest[(q + 1)..];
                rest = rest[..q];
            }
        }

        if (!rest.StartsWith('/'))
        {
            if (scheme.Length > 0)
            {
                url = new GoUrl { Scheme = scheme, Opaque = rest, RawQuery = rawQuery, _forceQuery = forceQuery };
                return true;
            }

            var slash = rest.IndexOf('/');
            var segment = slash < 0 ? rest : rest[..slash];
            if (segment.Contains(':', StringComparison.Ordinal))
            {
                error = "first path segment in URL cannot contain colon";
                return false;
            }
        }

        string? userInfo = null;
        var host = string.Empty;
        if ((scheme.Length > 0 || !rest.StartsWith("///", StringComparison.Ordinal)) && rest.StartsWith("//", StringComparison.Ordinal))
        {
            var authority = rest[2..];
            rest = string.Empty;
            var slash = authority.IndexOf('/');
            if (slash >= 0)
            {
                rest = authority[slash..];
                authority = authority[..slash];
            }

            if (!TryParseAuthority(authority, out userInfo, out host, out error))
            {
                return false;
            }
        }

        if (!TryUnescape(rest, Encoding.Path, out var path, out error))
        {
            return false;
        }

        url = new GoUrl
        {
            Scheme = scheme,
            UserInfo = userInfo,
            Host = host,
            Path = path,
            _rawPath = Escape(path, Encoding.Path) == rest ? string.Empty : rest,
            RawQuery = rawQuery,
            _forceQuery = forceQuery,
        };
        return true;
    }

    private static bool TryGetScheme(string raw, out string scheme, out string rest, out string error)
    {
        scheme = string.Empty;
        rest = raw;
        error = string.Empty;
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            if (c is >= 'a' and <= 'z' or >= 'A' and <= 'Z')
            {
                continue;
            }

            if (c is >= '0' and <= '9' or '+' or '-' or '.')
            {
                if (i == 0)
                {
                    return true;
                }

                continue;
            }

            if (c == ':')
            {
                if (i == 0)
                {
                    error = "missing protocol scheme";
                    return false;
                }

                scheme = raw[..i];
                rest = raw[(i + 1)..];
                return true;
            }

            return true;
        }

        return true;
    }

    private static bool TryParseAuthority(string authority, out string? userInfo, out string host, out string error)
    {
        userInfo = null;
        var at = authority.LastIndexOf('@');
        if (!TryParseHost(at < 0 ? authority : authority[(at + 1)..], out host, out error))
        {
            return false;
        }

        if (at < 0)
        {
            return true;
        }

        userInfo = authority[..at];
        if (!userInfo.All(ValidUserInfoChar))
        {
            error = "net/url: invalid userinfo";
            return false;
        }

        return true;
    }

    private static bool ValidUserInfoChar(char c) =>
        c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9'
            or '-' or '.' or '_' or ':' or '~' or '!' or '$' or '&' or '\'' or '(' or ')' or '*' or '+' or ',' or ';' or '=' or '%' or '@';

    private static bool TryParseHost(string host, out string result, out string error)
    {
        result = host;
        error = string.Empty;
        if (host.StartsWith('['))
        {
            var close = host.LastIndexOf(']');
            if (close < 0)
            {
                error = "missing ']' in host";
                return false;
            }

            var colonPort = host[(close + 1)..];
            if (!ValidOptionalPort(colonPort))
            {
                error = $"invalid port \"{colonPort}\" after host";
                return false;
            }
        }
        else
        {
            var colon = host.LastIndexOf(':');
            if (colon != -1 && !ValidOptionalPort(host.AsSpan(colon)))
            {
                error = $"invalid port \"{host[colon..]}\" after host";
                return false;
            }
        }

        return TryUnescape(host, Encoding.Host, out result, out error);
    }

    private static bool ValidOptionalPort(ReadOnlySpan<char> port)
    {
        if (port.IsEmpty)
        {
            return true;
        }

        if (port[0] != ':')
        {
            return false;
        }

        foreach (var c in port[1..])
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Go's <c>URL.String()</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        if (Scheme.Length > 0)
        {
            sb.Append(Scheme).Append(':');
        }

        if (Opaque.Length > 0)
        {
            sb.Append(Opaque);
        }
        else
        {
            if (Scheme.Length > 0 || Host.Length > 0 || UserInfo is not null)
            {
                if (Host.Length > 0 || Path.Length > 0 || UserInfo is not null)
                {
                    sb.Append("//");
                }

                if (UserInfo is not null)
                {
                    sb.Append(UserInfo).Append('@');
                }

                sb.Append(Escape(Host, Encoding.Host));
            }

            var path = EscapedPath();
            if (path.Length > 0 && path[0] != '/' && Host.Length > 0)
            {
                sb.Append('/');
            }

            if (sb.Length == 0)
            {
                var slash = path.IndexOf('/');
                if ((slash < 0 ? path : path[..slash]).Contains(':', StringComparison.Ordinal))
                {
                    sb.Append("./");
                }
            }

            sb.Append(path);
        }

        if (_forceQuery || RawQuery.Length > 0)
        {
            sb.Append('?').Append(RawQuery);
        }

        if (_fragment.Length > 0)
        {
            sb.Append('#').Append(_rawFragment.Length > 0 ? _rawFragment : Escape(_fragment, Encoding.Fragment));
        }

        return sb.ToString();
    }

    private string EscapedPath()
    {
        if (_rawPath.Length > 0 && ValidEncodedPath(_rawPath)
            && TryUnescape(_rawPath, Encoding.Path, out var decoded, out _) && decoded == Path)
        {
            return _rawPath;
        }

        return Path == "*" ? "*" : Escape(Path, Encoding.Path);
    }

    private static bool ValidEncodedPath(string s)
    {
        foreach (var c in s)
        {
            if (c is '!' or '$' or '&' or '\'' or '(' or ')' or '*' or '+' or ',' or ';' or '=' or ':' or '@' or '[' or ']' or '%')
            {
                continue;
            }

            if (ShouldEscape(c, Encoding.Path))
            {
                return false;
            }
        }

        return true;
    }

    private enum Encoding
    {
        Path,
        Host,
        Fragment,
    }

    private static bool ShouldEscape(char c, Encoding mode)
    {
        if (c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9')
        {
            return false;
        }

        if (mode == Encoding.Host && c is '!' or '$' or '&' or '\'' or '(' or ')' or '*' or '+' or ',' or ';' or '=' or ':' or '[' or ']' or '<' or '>' or '"')
        {
            return false;
        }

        switch (c)
        {
            case '-' or '_' or '.' or '~':
                return false;
            case '$' or '&' or '+' or ',' or '/' or ':' or ';' or '=' or '?' or '@':
                return mode switch
                {
                    Encoding.Path => c == '?',
                    Encoding.Fragment => false,
                    _ => true,
                };
        }

        return mode != Encoding.Fragment || c is not ('!' or '(' or ')' or '*');
    }

    private static bool TryUnescape(string s, Encoding mode, out string result, out string error)
    {
        result = s;
        error = string.Empty;
        if (mode == Encoding.Host)
        {
            foreach (var c in s)
            {
                if (c < 0x80 && c != '%' && ShouldEscape(c, mode))
                {
                    error = $"invalid character \"{c}\" in host name";
                    return false;
                }
            }
        }

        if (!s.Contains('%', StringComparison.Ordinal))
        {
            return true;
        }

        var bytes = new List<byte>(s.Length);
        var utf8 = System.Text.Encoding.UTF8;
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] == '%')
            {
                if (i + 2 >= s.Length || !Uri.IsHexDigit(s[i + 1]) || !Uri.IsHexDigit(s[i + 2]))
                {
                    var bad = s[i..Math.Min(s.Length, i + 3)];
                    error = $"invalid URL escape \"{bad}\"";
                    return false;
                }

                // Go allows only %25 (an IPv6 zone separator) among escapes of ASCII below 0x80 in a host.
                if (mode == Encoding.Host && Convert.ToInt32(s[i + 1].ToString(), 16) < 8 && s.Substring(i, 3) != "%25")
                {
                    error = $"invalid URL escape \"{s.Substring(i, 3)}\"";
                    return false;
                }

                bytes.Add(Convert.ToByte(s.Substring(i + 1, 2), 16));
                i += 2;
            }
            else
            {
                bytes.AddRange(utf8.GetBytes(s[i].ToString()));
            }
        }

        result = utf8.GetString(bytes.ToArray());
        return true;
    }

    private static string Escape(string s, Encoding mode)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(s))
        {
            var c = (char)b;
            if (b < 0x80 && !ShouldEscape(c, mode))
            {
                sb.Append(c);
            }
            else if (mode == Encoding.Host && b >= 0x80)
            {
                // Go keeps non-ASCII host bytes as they are.
                sb.Append(c);
            }
            else
            {
                sb.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return mode == Encoding.Host && s.Any(ch => ch >= 0x80) ? s : sb.ToString();
    }
}
