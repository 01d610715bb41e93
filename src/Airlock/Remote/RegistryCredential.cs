using System.Text;

namespace Airlock.Remote;

/// <summary>
/// Credentials for one registry as registries.yaml <c>configs.&lt;host&gt;.auth</c> holds them: a user name and
/// password, or <c>auth</c> (base64 of <c>user:pass</c>), or an identity (refresh) token for OAuth2 token servers.
/// </summary>
public sealed record RegistryCredential(string? Username, string? Password, string? Auth = null, string? IdentityToken = null)
{
    /// <summary>The user name and password, from the explicit fields or decoded from <see cref="Auth"/>.</summary>
    public (string User, string Password)? BasicPair
    {
        get
        {
            if (!string.IsNullOrEmpty(Username))
            {
                return (Username, Password ?? string.Empty);
            }

            if (string.IsNullOrEmpty(Auth))
            {
                return null;
            }

            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(Auth));
            }
            catch (FormatException)
            {
                return null;
            }

            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return colon < 0 ? null : (decoded[..colon], decoded[(colon + 1)..]);
        }
    }

    /// <summary>The value of an <c>Authorization: Basic</c> header, or null when there is no user/password.</summary>
    internal string? BasicParameter => BasicPair is { } pair
        ? Convert.ToBase64String(Encoding.UTF8.GetBytes(pair.User + ":" + pair.Password))
        : null;

    /// <summary>Parses <c>user:pass</c> (the <c>--creds</c> flag); the password may contain colons.</summary>
    public static RegistryCredential ParseUserPass(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new FormatException("credentials must be given as user:password");
        }

        return new RegistryCredential(value[..colon], value[(colon + 1)..]);
    }

    // Never print secrets, even in a debugger or a log line that formats the record.
    public override string ToString() => $"RegistryCredential {{ Username = {Username ?? BasicPair?.User} }}";
}

/// <summary>Finds the credentials for a registry host (as written in registries.yaml: host or host:port).</summary>
public interface IRegistryCredentialSource
{
    RegistryCredential? Find(string host);
}

/// <summary>Credentials fixed up front: one pair for every registry (<c>--creds</c>) or a table by host.</summary>
public sealed class StaticCredentialSource : IRegistryCredentialSource
{
    private readonly RegistryCredential? _everywhere;
    private readonly Dictionary<string, RegistryCredential> _byHost;

    public StaticCredentialSource(IReadOnlyDictionary<string, RegistryCredential> byHost)
    {
        ArgumentNullException.ThrowIfNull(byHost);
        _byHost = new Dictionary<string, RegistryCredential>(byHost, StringComparer.OrdinalIgnoreCase);
    }

    private StaticCredentialSource(RegistryCredential? everywhere)
    {
        _everywhere = everywhere;
        _byHost = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
    }

    public static StaticCredentialSource Anonymous { get; } = new((RegistryCredential?)null);

    /// <summary>The same credentials for every registry this run talks to.</summary>
    public static StaticCredentialSource ForEveryRegistry(RegistryCredential credential) => new(credential);

    /// <summary>From <c>user:pass</c> as given to <c>--creds</c>.</summary>
    public static StaticCredentialSource FromUserPass(string userPass) => new(RegistryCredential.ParseUserPass(userPass));

    public RegistryCredential? Find(string host) => _byHost.TryGetValue(host, out var credential) ? credential : _everywhere;
}
