using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Airlock.Cluster.Tokens;

/// <summary>What a join token lets its holder do.</summary>
public enum JoinTokenKind
{
    /// <summary><c>K10…::server:SECRET</c>: joins servers and agents.</summary>
    Server,

    /// <summary><c>K10…::node:SECRET</c> (<c>--agent-token</c>): joins agents only.</summary>
    Node,

    /// <summary><c>K10…::ID.SECRET</c> (<c>airlock token create</c>): joins agents only, until it expires.</summary>
    Bootstrap,
}

/// <summary>
/// A join token in K3s's format: <c>K10&lt;sha256 hex of the CA bundle served at /cacerts&gt;::&lt;credential&gt;</c>, where the
/// credential is <c>server:SECRET</c>, <c>node:SECRET</c> or a bootstrap token <c>ID.SECRET</c> (6 and 16 characters of
/// <c>[a-z0-9]</c>, as Kubernetes's bootstrap tokens). The hash lets a joining node check the server's CA before it sends
/// the secret, so a wrong or man-in-the-middle server never gets it.
/// </summary>
public sealed record JoinToken
{
    public const string Prefix = "K10";
    public const string ServerUser = "server";
    public const string NodeUser = "node";

    private const string Separator = "::";

    private JoinToken(string? caHash, JoinTokenKind kind, string id, string secret)
    {
        CaHash = caHash;
        Kind = kind;
        Id = id;
        Secret = secret;
    }

    /// <summary>Lower-case hex SHA-256 of the CA bundle; null for a bare secret (accepted by the server only).</summary>
    public string? CaHash { get; }

    public JoinTokenKind Kind { get; }

    /// <summary><c>server</c>, <c>node</c>, or the bootstrap token's id.</summary>
    public string Id { get; }

    public string Secret { get; }

    /// <summary>The part after <c>::</c>: what the server checks (<c>server:SECRET</c>, <c>node:SECRET</c>, <c>ID.SECRET</c>).</summary>
    public string Credential => Kind == JoinTokenKind.Bootstrap ? $"{Id}.{Secret}" : $"{Id}:{Secret}";

    public static JoinToken Create(string caHash, JoinTokenKind kind, string secret, string? id = null) => kind switch
    {
        JoinTokenKind.Server => new JoinToken(caHash, kind, ServerUser, secret),
        JoinTokenKind.Node => new JoinToken(caHash, kind, NodeUser, secret),
        _ => new JoinToken(caHash, kind, id ?? throw new ArgumentNullException(nameof(id)), secret),
    };

    /// <summary>The full token, <c>K10&lt;hash&gt;::&lt;credential&gt;</c>.</summary>
    public override string ToString() =>
        CaHash is null ? Credential : $"{Prefix}{CaHash}{Separator}{Credential}";

    /// <summary>
    /// Parses a full token (<c>K10…::…</c>). With <paramref name="allowBareSecret"/> (the server's own <c>--token</c>, as
    /// K3s takes it) a value without the K10 prefix is the secret alone. The error names what is wrong and how to fix it,
    /// never the secret.
    /// </summary>
    public static bool TryParse(string? text, JoinTokenKind bareKind, bool allowBareSecret, [NotNullWhen(true)] out JoinToken? token, out string error)
    {
        token = null;
        error = string.Empty;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            error = "the token is empty";
            return false;
        }

        if (!text.StartsWith(Prefix, StringComparison.Ordinal) || !text.Contains(Separator, StringComparison.Ordinal))
        {
            if (!allowBareSecret)
            {
                error = $"the token is not in the form {Prefix}<CA hash>::<credential>: use the full token from <data-dir>/server/token "
                    + "(or `airlock token create`), whose CA hash lets this node check the server before it sends the secret";
                return false;
            }

            if (!IsSecret(text, out error))
            {
                return false;
            }

            token = new JoinToken(null, bareKind, bareKind == JoinTokenKind.Node ? NodeUser : ServerUser, text);
            return true;
        }

        var separator = text.IndexOf(Separator, StringComparison.Ordinal);
        var hash = text[Prefix.Length..separator];
        var credential = text[(separator + Separator.Length)..];
        if (hash.Length != 64 || !hash.All(char.IsAsciiHexDigit))
        {
            error = $"the token's CA hash \"{hash}\" is not 64 hexadecimal digits (a SHA-256): the token was cut or mistyped";
            return false;
        }

        hash = hash.ToLowerInvariant();
        if (IsBootstrapCredential(credential))
        {
            var dot = credential.IndexOf('.', StringComparison.Ordinal);
            token = new JoinToken(hash, JoinTokenKind.Bootstrap, credential[..dot], credential[(dot + 1)..]);
            return true;
        }

        var colon = credential.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            error = "the token's credential (after ::) is neither server:<secret>, node:<secret> nor a bootstrap token <6 chars>.<16 chars>";
            return false;
        }

        var user = credential[..colon];
        var kind = user switch
        {
            ServerUser => JoinTokenKind.Server,
            NodeUser => JoinTokenKind.Node,
            _ => (JoinTokenKind?)null,
        };
        if (kind is null)
        {
            error = $"the token's user \"{user}\" is neither \"{ServerUser}\" nor \"{NodeUser}\"";
            return false;
        }

        if (!IsSecret(credential[(colon + 1)..], out error))
        {
            return false;
        }

        token = new JoinToken(hash, kind.Value, user, credential[(colon + 1)..]);
        return true;
    }

    /// <summary>A new random secret: 32 hex characters (128 bits), as K3s generates.</summary>
    public static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>Lower-case hex SHA-256 of the exact bytes served at <c>/cacerts</c>.</summary>
    public static string HashCaBundle(ReadOnlySpan<byte> bundle) => Convert.ToHexStringLower(SHA256.HashData(bundle));

    /// <summary>Constant-time comparison of two secrets.</summary>
    public static bool SecretsEqual(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));

    internal static bool IsBootstrapCredential(string credential) =>
        credential.Length == 23 && credential[6] == '.'
        && credential.Remove(6, 1).All(c => char.IsAsciiDigit(c) || char.IsAsciiLetterLower(c));

    private static bool IsSecret(string secret, out string error)
    {
        error = string.Empty;
        if (secret.Length == 0)
        {
            error = "the token's secret is empty";
            return false;
        }

        if (secret.Any(c => c is ':' || c <= ' ' || c > '~'))
        {
            error = "the token's secret may hold only printable ASCII characters other than ':' and spaces";
            return false;
        }

        return true;
    }
}
