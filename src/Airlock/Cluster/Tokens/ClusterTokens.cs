using System.Text;
using Airlock.IO;

namespace Airlock.Cluster.Tokens;

/// <summary>The outcome of checking a join credential: accepted (and as what), or refused with an HTTP status and why.</summary>
public sealed record TokenCheck(bool Accepted, int Status, string Message)
{
    public static TokenCheck Accept(string joinedWith) => new(true, 200, joinedWith);

    public static TokenCheck Unauthorized(string message) => new(false, 401, message);

    public static TokenCheck Forbidden(string message) => new(false, 403, message);
}

/// <summary>A problem with the tokens the server is given or has stored; the message names it and the fix.</summary>
public sealed class TokenConfigurationException(string message) : Exception(message);

/// <summary>
/// The server's join tokens: the server token (<c>server/token</c>, joins servers and agents), the optional agent token
/// (<c>server/agent-token</c>, <c>--agent-token</c>, agents only; without one, agents use the server token's secret as
/// <c>node</c>, as in K3s) and the bootstrap tokens. The files hold the full K10 tokens (mode 0600) and are rewritten when the
/// CA bundle, and so the hash, changes; the secrets stay.
/// </summary>
public sealed class ClusterTokens
{
    private readonly string _serverSecret;
    private readonly string? _agentSecret;

    private ClusterTokens(string serverSecret, string? agentSecret, BootstrapTokenStore bootstrap, string caHash)
    {
        _serverSecret = serverSecret;
        _agentSecret = agentSecret;
        Bootstrap = bootstrap;
        ServerToken = JoinToken.Create(caHash, JoinTokenKind.Server, serverSecret);
        AgentToken = agentSecret is null ? null : JoinToken.Create(caHash, JoinTokenKind.Node, agentSecret);
    }

    public JoinToken ServerToken { get; }

    public JoinToken? AgentToken { get; }

    public BootstrapTokenStore Bootstrap { get; }

    /// <summary>
    /// Reads the stored tokens, takes <paramref name="token"/> and <paramref name="agentToken"/> (a bare secret or a full
    /// token) when given, creates a random server secret at the first start, and writes both files with
    /// <paramref name="caHash"/>. A given token that differs from the stored one is refused (the nodes joined with the stored
    /// one), as is a full token whose hash is not this server's CA.
    /// </summary>
    public static ClusterTokens Ensure(ServerDirectory directory, string caHash, string? token, string? agentToken, TimeProvider time)
    {
        var problems = new List<string>();
        var serverSecret = Resolve(directory.Token, "--token", JoinTokenKind.Server, token, caHash, problems) ?? JoinToken.NewSecret();
        var agentSecret = Resolve(directory.AgentToken, "--agent-token", JoinTokenKind.Node, agentToken, caHash, problems);
        if (agentSecret is not null && agentSecret == serverSecret)
        {
            problems.Add("--agent-token must differ from the server token: it exists so that agents cannot join servers");
        }

        if (problems.Count > 0)
        {
            throw new TokenConfigurationException(string.Join(Environment.NewLine, problems));
        }

        var tokens = new ClusterTokens(serverSecret, agentSecret, new BootstrapTokenStore(directory.Root, time), caHash);
        Write(directory.Token, tokens.ServerToken);
        if (tokens.AgentToken is { } agent)
        {
            Write(directory.AgentToken, agent);
        }

        return tokens;
    }

    /// <summary>Rewrites the token files for a new CA bundle hash (after <c>certificate rotate-ca</c>); returns the new server token.</summary>
    public static JoinToken Rehash(ServerDirectory directory, string caHash)
    {
        var server = ReadStored(directory.Token, JoinTokenKind.Server)
            ?? throw new TokenConfigurationException($"{directory.Token} does not exist: start `airlock server` once to create the cluster");
        var rehashed = JoinToken.Create(caHash, JoinTokenKind.Server, server.Secret);
        Write(directory.Token, rehashed);
        if (ReadStored(directory.AgentToken, JoinTokenKind.Node) is { } agent)
        {
            Write(directory.AgentToken, JoinToken.Create(caHash, JoinTokenKind.Node, agent.Secret));
        }

        return rehashed;
    }

    /// <summary>
    /// Checks the Basic credentials of a join: <c>server</c>/<c>node</c> and a secret, or a bootstrap token's id and secret.
    /// Only the server token joins a server.
    /// </summary>
    public TokenCheck Check(string user, string secret, bool joiningServer)
    {
        switch (user)
        {
            case JoinToken.ServerUser:
                return JoinToken.SecretsEqual(secret, _serverSecret)
                    ? TokenCheck.Accept("server token")
                    : TokenCheck.Unauthorized("the token's secret is not this server's: copy the token again from <data-dir>/server/token on the server");
            case JoinToken.NodeUser:
                if (!JoinToken.SecretsEqual(secret, _agentSecret ?? _serverSecret))
                {
                    return TokenCheck.Unauthorized("the agent token's secret is not this server's: copy it again from <data-dir>/server/agent-token on the server");
                }

                return joiningServer
                    ? TokenCheck.Forbidden("an agent token (K10…::node:…) joins agents only; a server joins with the server token (<data-dir>/server/token)")
                    : TokenCheck.Accept(_agentSecret is null ? "server token as node" : "agent token");
            default:
                if (Bootstrap.Refusal(user, secret) is { } refusal)
                {
                    return TokenCheck.Unauthorized(refusal);
                }

                return joiningServer
                    ? TokenCheck.Forbidden($"bootstrap token {user} joins agents only; a server joins with the server token (<data-dir>/server/token)")
                    : TokenCheck.Accept($"bootstrap token {user}");
        }
    }

    private static string? Resolve(string path, string flag, JoinTokenKind kind, string? given, string caHash, List<string> problems)
    {
        JoinToken? stored;
        try
        {
            stored = ReadStored(path, kind);
        }
        catch (TokenConfigurationException ex)
        {
            problems.Add(ex.Message);
            return null;
        }

        if (given is null)
        {
            return stored?.Secret;
        }

        if (!JoinToken.TryParse(given, kind, allowBareSecret: true, out var parsed, out var error))
        {
            problems.Add($"{flag}: {error}");
            return null;
        }

        if (parsed.Kind != kind)
        {
            problems.Add($"{flag} is a {Describe(parsed.Kind)}; it must be a {Describe(kind)} or a bare secret");
            return null;
        }

        if (parsed.CaHash is { } hash && hash != caHash)
        {
            problems.Add($"{flag} pins CA hash {hash}, but this server's CA bundle hashes to {caHash}: "
                + $"give only the secret, or the token in {path}");
            return null;
        }

        if (stored is not null && !JoinToken.SecretsEqual(stored.Secret, parsed.Secret))
        {
            problems.Add($"{flag} differs from the token this server already has in {path}, which its nodes joined with: "
                + "leave the flag out, or give that token");
            return null;
        }

        return parsed.Secret;
    }

    private static JoinToken? ReadStored(string path, JoinTokenKind kind)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var text = File.ReadAllText(path, Encoding.UTF8).Trim();
        return JoinToken.TryParse(text, kind, allowBareSecret: false, out var token, out var error) && token.Kind == kind
            ? token
            : throw new TokenConfigurationException($"{path} does not hold a {Describe(kind)} ({(error.Length > 0 ? error : "wrong kind")}): restore it from a backup");
    }

    private static void Write(string path, JoinToken token) =>
        AtomicFile.Write(path, Encoding.UTF8.GetBytes(token + "\n"), AtomicFile.Private);

    internal static string Describe(JoinTokenKind kind) => kind switch
    {
        JoinTokenKind.Server => "server token (K10…::server:…)",
        JoinTokenKind.Node => "agent token (K10…::node:…)",
        _ => "bootstrap token",
    };
}
