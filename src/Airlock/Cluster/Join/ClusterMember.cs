using System.Net;
using System.Net.Http;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Supervisor;
using Airlock.Cluster.Tokens;
using Airlock.IO;
using Airlock.Tls;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Cluster.Join;

/// <summary>What <see cref="ClusterMember"/> needs: the server, the token, and what the node registers.</summary>
public sealed record ClusterMemberOptions
{
    /// <summary>The supervisor API (<c>--server https://HOST:PORT</c>).</summary>
    public required Uri Server { get; init; }

    /// <summary>The full join token (<c>K10…</c>); its hash is checked against the server's CA before the secret is sent.</summary>
    public required string Token { get; init; }

    public required string DataDirectory { get; init; }

    /// <summary>The node name (<c>--node-name</c>); null: the host name.</summary>
    public string? NodeName { get; init; }

    /// <summary>Add a random suffix (kept under <c>agent/node-id</c>) to the name (<c>--with-node-id</c>).</summary>
    public bool WithNodeId { get; init; }

    public IReadOnlyList<string> Labels { get; init; } = [];

    public IReadOnlyList<string> Taints { get; init; } = [];

    /// <summary>The node's addresses (<c>--node-ip</c>); empty: <see cref="NodeAddresses.Default"/>.</summary>
    public IReadOnlyList<IPAddress> Addresses { get; init; } = [];

    public NodeRole Role { get; init; }

    /// <summary>The Airlock version the node reports.</summary>
    public string? Version { get; init; }

    /// <summary>Connect and response timeout of each request to the server.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>What each heartbeat advertises (the peer mirror sets it); null: nothing.</summary>
    public Func<NodeAdvertisement?>? Advertise { get; init; }

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>Every problem at once; empty when the node can try to join.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Server.Scheme != Uri.UriSchemeHttps || !string.IsNullOrEmpty(Server.Query) || Server.AbsolutePath != "/")
        {
            problems.Add($"--server \"{Server}\" must be https://HOST:PORT (the supervisor API)");
        }

        if (!JoinToken.TryParse(Token, JoinTokenKind.Node, allowBareSecret: false, out _, out var tokenError))
        {
            problems.Add($"--token: {tokenError}");
        }

        if (NodeName is not null && NodeRules.CheckName(NodeName) is { } nameProblem)
        {
            problems.Add(nameProblem);
        }

        NodeRules.ParseLabels(Labels, problems);
        NodeRules.ParseTaints(Taints, problems);
        return problems;
    }
}

/// <summary>A join that cannot succeed as configured (wrong CA hash, refused token or name, bad flags): nothing was sent or kept.</summary>
public sealed class ClusterJoinException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A node's membership of the cluster, as K3s's agent holds it: at start it joins (or loads the identity it joined with
/// before), then sends heartbeats, renews its certificates before they expire (new keys, no restart; also when the server's
/// CA was rotated), and joins again by itself when the server no longer knows it. The first join fetches <c>/cacerts</c>,
/// compares its SHA-256 with the token's hash and stops, naming both, when they differ: a wrong or man-in-the-middle server
/// never gets the secret.
/// </summary>
public sealed partial class ClusterMember : IDisposable
{
    private readonly ClusterMemberOptions _options;
    private readonly AgentDirectory _directory;
    private readonly JoinToken _token;
    private readonly string _nodeName;
    private readonly IReadOnlyList<IPAddress> _addresses;
    private MemberCredentials _credentials;
    private SupervisorClient _client;
    private MemberSettings? _settings;
    private bool _unreachable;

    private ClusterMember(ClusterMemberOptions options, AgentDirectory directory, JoinToken token, string nodeName, IReadOnlyList<IPAddress> addresses, MemberCredentials credentials)
    {
        _options = options;
        _directory = directory;
        _token = token;
        _nodeName = nodeName;
        _addresses = addresses;
        _credentials = credentials;
        _client = CreateClient(credentials);
    }

    /// <summary>The node's current identity (replaced at each renewal; see <see cref="CredentialsChanged"/>).</summary>
    public MemberCredentials Credentials => Volatile.Read(ref _credentials);

    public string NodeName => _nodeName;

    /// <summary>The addresses the node registered.</summary>
    public IReadOnlyList<IPAddress> Addresses => _addresses;

    /// <summary>What the server said last (interval, renewal window, CA hash); null before the first answer.</summary>
    public MemberSettings? Settings => _settings;

    /// <summary>Raised after the certificates were renewed or the node joined again: TLS built on the old ones should be rebuilt.</summary>
    public event Action<MemberCredentials>? CredentialsChanged;

    /// <summary>Raised after each heartbeat the server accepted.</summary>
    public event Action<MemberSettings>? HeartbeatAccepted;

    /// <summary>
    /// Joins the cluster, or takes up the identity this node joined with before. Waits for an unreachable server (K3s's agent
    /// does too); throws <see cref="ClusterJoinException"/> when the join cannot succeed as configured.
    /// </summary>
    public static async Task<ClusterMember> StartAsync(ClusterMemberOptions options, CancellationToken cancellationToken)
    {
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new ClusterJoinException(string.Join(Environment.NewLine, problems));
        }

        JoinToken.TryParse(options.Token, JoinTokenKind.Node, allowBareSecret: false, out var token, out _);
        var directory = new AgentDirectory(options.DataDirectory);
        if (Directory.Exists(options.DataDirectory))
        {
            DirectoryOwner.EnsureOwned(options.DataDirectory);
        }

        DirectoryOwner.EnsureOwned(directory.Root);
        var addresses = options.Addresses.Count > 0 ? options.Addresses : NodeAddresses.Default();
        var nodeName = ResolveName(options, directory);
        var existing = LoadOrSetAside(directory, options.Logger, options.Time);
        if (existing is not null && existing.NodeName != nodeName)
        {
            LogRenamed(options.Logger, existing.NodeName, nodeName);
            existing.Dispose();
            existing = null;
        }

        var credentials = existing ?? await JoinAsync(options, directory, token!, nodeName, addresses, trusted: null, cancellationToken).ConfigureAwait(false);
        return new ClusterMember(options, directory, token!, nodeName, addresses, credentials);
    }

    /// <summary>Sends heartbeats (the first at once) until cancelled; renews and joins again as needed. Never throws but for cancellation.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await BeatAsync(cancellationToken).ConfigureAwait(false);
            var interval = TimeSpan.FromSeconds(Math.Max(1, _settings?.HeartbeatSeconds ?? 10));
            await Task.Delay(interval, _options.Time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>One heartbeat with what it implies: renewal when due (or the CA changed), joining again when forgotten.</summary>
    internal async Task BeatAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (RenewalDue() is { } reason)
            {
                await RenewAsync(reason, cancellationToken).ConfigureAwait(false);
            }

            var settings = await _client.HeartbeatAsync(new HeartbeatRequest
            {
                Addresses = [.. _addresses.Select(a => a.ToString())],
                Version = _options.Version,
                Advertises = _options.Advertise?.Invoke(),
            }, cancellationToken).ConfigureAwait(false);
            _settings = settings;
            if (_unreachable)
            {
                _unreachable = false;
                LogReachable(_options.Logger, _options.Server);
            }

            if (settings.CaHash != Credentials.ServerCaHash)
            {
                await RenewAsync("the server's CA was rotated", cancellationToken).ConfigureAwait(false);
            }

            HeartbeatAccepted?.Invoke(settings);
        }
        catch (SupervisorException ex) when (ex.Status is HttpStatusCode.NotFound or HttpStatusCode.Unauthorized)
        {
            LogForgotten(_options.Logger, _options.Server, ex.Message);
            try
            {
                var joined = await JoinAsync(_options, _directory, _token, _nodeName, _addresses, Credentials.ServerCas, cancellationToken).ConfigureAwait(false);
                Replace(joined);
            }
            catch (Exception again) when (again is ClusterJoinException or HttpRequestException or TlsMaterialException
                || (again is TaskCanceledException && !cancellationToken.IsCancellationRequested))
            {
                LogJoinFailed(_options.Logger, again.Message);
            }
        }
        catch (SupervisorException ex)
        {
            LogRefused(_options.Logger, (int)ex.Status, ex.Message);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            if (Untrusted(ex))
            {
                LogUntrusted(_options.Logger, _options.Server, _directory.ServerCa);
            }
            else if (!_unreachable)
            {
                _unreachable = true;
                LogUnreachable(_options.Logger, _options.Server, ex.Message);
            }
        }
    }

    /// <summary>The cluster's members (peers find each other here).</summary>
    public Task<IReadOnlyList<ClusterNode>> ListNodesAsync(CancellationToken cancellationToken) => _client.ListNodesAsync(cancellationToken);

    private string? RenewalDue()
    {
        var renewWithin = TimeSpan.FromSeconds(_settings?.RenewWithinSeconds ?? (long)ServerPki.DefaultRenewWithin.TotalSeconds);
        var notAfter = Credentials.NotAfter;
        return _options.Time.GetUtcNow() >= notAfter - renewWithin ? $"the certificates expire at {notAfter.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}" : null;
    }

    private async Task RenewAsync(string reason, CancellationToken cancellationToken)
    {
        using var clientKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var servingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var response = await _client.RenewAsync(new RenewRequest
        {
            Certificates = new NodeCertificateRequests(
                NodeCertificates.CreateRequest(clientKey, _nodeName, serving: false, _addresses),
                NodeCertificates.CreateRequest(servingKey, _nodeName, serving: true, _addresses)),
            Addresses = [.. _addresses.Select(a => a.ToString())],
        }, cancellationToken).ConfigureAwait(false);
        _settings = response.Settings;
        var renewed = MemberCredentials.Save(_directory, Credentials.Membership, response.Certificates, clientKey, servingKey);
        Replace(renewed);
        LogRenewed(_options.Logger, reason, renewed.NotAfter.UtcDateTime);
    }

    private void Replace(MemberCredentials credentials)
    {
        var old = Interlocked.Exchange(ref _credentials, credentials);
        var client = Interlocked.Exchange(ref _client, CreateClient(credentials));
        client.Dispose();
        CredentialsChanged?.Invoke(credentials);
        // Anyone holding the old certificates keeps working with them until they rebuild: they are not disposed here.
        _ = old;
    }

    private SupervisorClient CreateClient(MemberCredentials credentials) =>
        new(_options.Server, credentials.ServerCas, credentials.ClientContext(), _options.Time, _options.RequestTimeout);

    /// <summary>
    /// The join itself. Without <paramref name="trusted"/> (the first join) the CA bundle is fetched untrusted and must match
    /// the token's hash; with it (joining again) it is fetched over a connection that <paramref name="trusted"/> verifies, so
    /// a CA rotated since (cross-signed by the one this node trusts) is followed.
    /// </summary>
    private static async Task<MemberCredentials> JoinAsync(ClusterMemberOptions options, AgentDirectory directory, JoinToken token, string nodeName,
        IReadOnlyList<IPAddress> addresses, X509Certificate2Collection? trusted, CancellationToken cancellationToken)
    {
        var logger = options.Logger;
        var bundle = await UntilReachableAsync(options, async () =>
        {
            if (trusted is not null)
            {
                using var verified = new SupervisorClient(options.Server, trusted, null, options.Time, options.RequestTimeout);
                return await verified.GetCaBundleAsync(cancellationToken).ConfigureAwait(false);
            }

            return await SupervisorClient.FetchCaBundleAsync(options.Server, options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);

        var hash = JoinToken.HashCaBundle(bundle);
        if (trusted is null && hash != token.CaHash)
        {
            throw new ClusterJoinException(
                $"the server at {options.Server} serves a CA bundle with hash {hash}, but the token pins {token.CaHash}: it is not the server the "
                + "token came from, or something in between answers for it. The token's secret was not sent. Check --server, or copy the token "
                + "again from <data-dir>/server/token on the server.");
        }

        var cas = new X509Certificate2Collection();
        try
        {
            cas.ImportFromPem(Encoding.ASCII.GetString(bundle));
        }
        catch (CryptographicException ex)
        {
            throw new ClusterJoinException($"the server at {options.Server} serves a CA bundle that is not PEM certificates: {ex.Message}", ex);
        }

        var password = NodePassword(directory);
        using var clientKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var servingKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var problems = new List<string>();
        var request = new JoinRequest
        {
            Name = nodeName,
            Role = options.Role,
            Password = password,
            Labels = NodeRules.ParseLabels(options.Labels, problems),
            Taints = NodeRules.ParseTaints(options.Taints, problems),
            Addresses = [.. addresses.Select(a => a.ToString())],
            Version = options.Version,
            Certificates = new NodeCertificateRequests(
                NodeCertificates.CreateRequest(clientKey, nodeName, serving: false, addresses),
                NodeCertificates.CreateRequest(servingKey, nodeName, serving: true, addresses)),
        };

        using var client = new SupervisorClient(options.Server, cas, null, options.Time, options.RequestTimeout);
        CertificatesResponse response;
        try
        {
            response = await UntilReachableAsync(options, () => client.JoinAsync(token.Id, token.Secret, request, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (SupervisorException ex)
        {
            throw new ClusterJoinException($"the server at {options.Server} refused to let {nodeName} join: {ex.Message}", ex);
        }

        var credentials = MemberCredentials.Save(directory, new AgentMembership(options.Server.ToString(), nodeName, options.Time.GetUtcNow()),
            response.Certificates, clientKey, servingKey);
        LogJoined(logger, options.Server, nodeName, credentials.NotAfter.UtcDateTime);
        return credentials;
    }

    /// <summary>Retries <paramref name="attempt"/> while the server cannot be reached (every few seconds, logged once).</summary>
    private static async Task<T> UntilReachableAsync<T>(ClusterMemberOptions options, Func<Task<T>> attempt, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromSeconds(1);
        var logged = false;
        while (true)
        {
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (Exception ex) when ((ex is HttpRequestException && !Untrusted(ex)) || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
            {
                if (!logged)
                {
                    logged = true;
                    LogWaiting(options.Logger, options.Server, ex.Message);
                }
            }
            catch (HttpRequestException ex)
            {
                throw new ClusterJoinException(
                    $"the server at {options.Server} presents a certificate that is not from the cluster CA, or not for the host in --server "
                    + $"(add that name with --tls-san on the server): {ex.InnerException?.Message ?? ex.Message}", ex);
            }

            await Task.Delay(delay, options.Time, cancellationToken).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(15).Ticks));
        }
    }

    private static bool Untrusted(Exception ex)
    {
        for (var inner = ex; inner is not null; inner = inner.InnerException)
        {
            if (inner is AuthenticationException)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The node's name: <c>--node-name</c> or the host name (lower-cased), with <c>--with-node-id</c>'s kept suffix.</summary>
    private static string ResolveName(ClusterMemberOptions options, AgentDirectory directory)
    {
        var name = options.NodeName ?? Dns.GetHostName().ToLowerInvariant();
        if (!options.WithNodeId)
        {
            return name;
        }

        if (!File.Exists(directory.NodeId))
        {
            AtomicFile.Write(directory.NodeId, Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)) + "\n"), AtomicFile.Private);
        }

        return $"{name}-{File.ReadAllText(directory.NodeId).Trim()}";
    }

    /// <summary>This node's password, created at the first join and kept (the server gives its name only to its holder).</summary>
    private static string NodePassword(AgentDirectory directory)
    {
        if (File.Exists(directory.NodePassword))
        {
            var stored = File.ReadAllText(directory.NodePassword).Trim();
            if (stored.Length >= 16)
            {
                return stored;
            }
        }

        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        AtomicFile.Write(directory.NodePassword, Encoding.ASCII.GetBytes(password + "\n"), AtomicFile.Private);
        return password;
    }

    /// <summary>
    /// The identity this node joined with; when its files cannot be used (a truncated key, a certificate that does not match
    /// its key) they are moved to <c>agent/unusable-&lt;unix time&gt;/</c> — kept, not overwritten — and the node joins again.
    /// </summary>
    private static MemberCredentials? LoadOrSetAside(AgentDirectory directory, ILogger logger, TimeProvider time)
    {
        try
        {
            return MemberCredentials.Load(directory);
        }
        catch (TlsMaterialException ex)
        {
            var aside = Path.Combine(directory.Root, $"unusable-{time.GetUtcNow().ToUnixTimeSeconds()}");
            Directory.CreateDirectory(aside, DirectoryOwner.Private);
            foreach (var file in new[] { directory.Membership, directory.ClientCertificate, directory.ClientKey, directory.ServingCertificate, directory.ServingKey, directory.ServerCa, directory.ClientCa })
            {
                if (File.Exists(file))
                {
                    File.Move(file, Path.Combine(aside, Path.GetFileName(file)), overwrite: true);
                }
            }

            LogSetAside(logger, ex.Message, aside);
            return null;
        }
    }

    public void Dispose()
    {
        _client.Dispose();
        _credentials.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Joined the cluster at {Server} as {Node}; certificates valid until {NotAfter}")]
    private static partial void LogJoined(ILogger logger, Uri server, string node, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Information, Message = "Renewed the node certificates ({Reason}); valid until {NotAfter}")]
    private static partial void LogRenewed(ILogger logger, string reason, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The node name changed from {Old} to {New}: joining as a new node")]
    private static partial void LogRenamed(ILogger logger, string old, string @new);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Waiting for the server at {Server}: {Reason}")]
    private static partial void LogWaiting(ILogger logger, Uri server, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The server at {Server} cannot be reached ({Reason}); heartbeats continue")]
    private static partial void LogUnreachable(ILogger logger, Uri server, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "The server at {Server} answers again")]
    private static partial void LogReachable(ILogger logger, Uri server);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The server at {Server} does not know this node ({Reason}); joining again with the token")]
    private static partial void LogForgotten(ILogger logger, Uri server, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Joining again failed: {Reason}; retrying at the next heartbeat")]
    private static partial void LogJoinFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The server refused a heartbeat ({Status}): {Reason}")]
    private static partial void LogRefused(ILogger logger, int status, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "The server at {Server} presents a certificate that is not from the cluster CA in {CaFile}: its CA was replaced. "
        + "Join again with the new token: stop the agent, move <data-dir>/agent/membership.json away, and start it with the new --token")]
    private static partial void LogUntrusted(ILogger logger, Uri server, string caFile);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The node's cluster identity cannot be used ({Reason}); kept in {Directory}, joining again with the token")]
    private static partial void LogSetAside(ILogger logger, string reason, string directory);
}
