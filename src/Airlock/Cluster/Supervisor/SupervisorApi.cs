using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Tokens;
using Airlock.Oci;
using Airlock.Registry.Auth;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Cluster.Supervisor;

/// <summary>A request the supervisor refuses: the HTTP status and the message the node shows its operator.</summary>
internal sealed class SupervisorRefusal(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// The supervisor API's one request delegate: <c>/cacerts</c> for anyone, a join for the holder of a token, heartbeats,
/// renewals and the node list for members (by their client certificate, which the TLS handshake already checked against
/// the client CA). Every refusal is a JSON <see cref="ErrorResponse"/> naming the problem and its fix, and writes nothing.
/// </summary>
internal sealed partial class SupervisorApi(ServerPki pki, ClusterTokens tokens, MembershipStore membership, SupervisorSettings settings, ILogger logger)
{
    /// <summary>A join or renewal carries two CSRs and some labels: far below this.</summary>
    private const long MaxJoinBytes = 1 << 20;

    public async Task HandleAsync(HttpContext context)
    {
        try
        {
            await DispatchAsync(context).ConfigureAwait(false);
        }
        catch (SupervisorRefusal refusal)
        {
            LogRefused(logger, context.Request.Path.Value ?? "", context.Connection.RemoteIpAddress?.ToString() ?? "?", refusal.Status, refusal.Message);
            await WriteAsync(context, refusal.Status, new ErrorResponse(refusal.Message), SupervisorJson.Default.ErrorResponse).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The node went away.
        }
    }

    private Task DispatchAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        var method = context.Request.Method;
        return (path, method) switch
        {
            (SupervisorPaths.CaCerts, "GET") => WriteCaCertsAsync(context),
            (SupervisorPaths.Health, "GET") => WriteTextAsync(context, "ok\n"),
            (SupervisorPaths.Join, "POST") => JoinAsync(context),
            (SupervisorPaths.Heartbeat, "POST") => HeartbeatAsync(context),
            (SupervisorPaths.Renew, "POST") => RenewAsync(context),
            (SupervisorPaths.Nodes, "GET") => ListAsync(context),
            (SupervisorPaths.CaCerts or SupervisorPaths.Health or SupervisorPaths.Join or SupervisorPaths.Heartbeat or SupervisorPaths.Renew or SupervisorPaths.Nodes, _) =>
                throw new SupervisorRefusal(StatusCodes.Status405MethodNotAllowed, $"{method} is not allowed on {path}"),
            _ => throw new SupervisorRefusal(StatusCodes.Status404NotFound, $"{path} is not part of the supervisor API"),
        };
    }

    private static Task WriteCaCertsAsync(HttpContext context, ReadOnlyMemory<byte> bundle)
    {
        context.Response.ContentType = "application/x-pem-file";
        context.Response.ContentLength = bundle.Length;
        return context.Response.Body.WriteAsync(bundle, context.RequestAborted).AsTask();
    }

    private Task WriteCaCertsAsync(HttpContext context) => WriteCaCertsAsync(context, pki.ServerCa.BundlePem);

    private async Task JoinAsync(HttpContext context)
    {
        var credentials = BasicCredentials.From(context.Request, out var malformed);
        if (credentials is not { } presented)
        {
            throw new SupervisorRefusal(StatusCodes.Status401Unauthorized, malformed
                ? "the join's Authorization header is not valid Basic credentials"
                : "a join needs the token's credential (HTTP Basic: server, node or a bootstrap token id, and the secret)");
        }

        var request = await ReadAsync(context, SupervisorJson.Default.JoinRequest).ConfigureAwait(false);
        var check = tokens.Check(presented.User, presented.Password, request.Role == NodeRole.Server);
        if (!check.Accepted)
        {
            throw new SupervisorRefusal(check.Status, check.Message);
        }

        var problems = new List<string>();
        if (NodeRules.CheckName(request.Name) is { } nameProblem)
        {
            problems.Add(nameProblem);
        }

        foreach (var (key, value) in request.Labels)
        {
            if (NodeRules.CheckLabel(key, value) is { } labelProblem)
            {
                problems.Add(labelProblem);
            }
        }

        NodeRules.ParseTaints(request.Taints, problems);
        var addresses = ParseAddresses(request.Addresses, problems);
        if (request.Password.Length < 16)
        {
            problems.Add("the node password must have at least 16 characters");
        }

        if (problems.Count > 0)
        {
            throw new SupervisorRefusal(StatusCodes.Status422UnprocessableEntity, string.Join("; ", problems));
        }

        try
        {
            membership.CheckName(request.Name, request.Password);
        }
        catch (MembershipRefusedException ex)
        {
            throw new SupervisorRefusal(StatusCodes.Status409Conflict, ex.Message);
        }

        var certificates = Sign(request.Name, addresses, request.Certificates);
        var now = settings.Time.GetUtcNow();
        try
        {
            membership.Join(new NodeRecord
            {
                Name = request.Name,
                Role = request.Role,
                Labels = request.Labels,
                Taints = request.Taints,
                Addresses = [.. addresses.Select(a => a.ToString())],
                Version = request.Version,
                Joined = now,
                LastSeen = now,
                HeartbeatSeconds = settings.HeartbeatSeconds,
                PasswordSha256 = MembershipStore.HashPassword(request.Password),
                CertificateExpires = ExpiryOf(certificates.Client),
                JoinedWith = check.Message,
            });
        }
        catch (MembershipRefusedException ex)
        {
            throw new SupervisorRefusal(StatusCodes.Status409Conflict, ex.Message);
        }

        LogJoined(logger, request.Name, request.Role.ToString(), context.Connection.RemoteIpAddress?.ToString() ?? "?", check.Message);
        await WriteAsync(context, StatusCodes.Status200OK, new CertificatesResponse { Name = request.Name, Certificates = certificates, Settings = Settings() },
            SupervisorJson.Default.CertificatesResponse).ConfigureAwait(false);
    }

    private async Task HeartbeatAsync(HttpContext context)
    {
        var name = MemberName(context);
        var request = await ReadAsync(context, SupervisorJson.Default.HeartbeatRequest).ConfigureAwait(false);
        var problems = new List<string>();
        var addresses = request.Addresses is null ? null : ParseAddresses(request.Addresses, problems).Select(a => a.ToString()).ToList();
        if (request.Advertises is { } advertisement)
        {
            CheckAdvertisement(advertisement, problems);
        }

        if (problems.Count > 0)
        {
            throw new SupervisorRefusal(StatusCodes.Status422UnprocessableEntity, string.Join("; ", problems));
        }

        if (!membership.Heartbeat(name, addresses, request.Version, request.Advertises))
        {
            throw NotAMember(name);
        }

        await WriteAsync(context, StatusCodes.Status200OK, Settings(), SupervisorJson.Default.MemberSettings).ConfigureAwait(false);
    }

    private async Task RenewAsync(HttpContext context)
    {
        var name = MemberName(context);
        var request = await ReadAsync(context, SupervisorJson.Default.RenewRequest).ConfigureAwait(false);
        var record = membership.Record(name) ?? throw NotAMember(name);
        var problems = new List<string>();
        var addresses = ParseAddresses(request.Addresses ?? record.Addresses, problems);
        if (problems.Count > 0)
        {
            throw new SupervisorRefusal(StatusCodes.Status422UnprocessableEntity, string.Join("; ", problems));
        }

        var certificates = Sign(name, addresses, request.Certificates);
        membership.Renewed(name, ExpiryOf(certificates.Client));
        LogRenewed(logger, name);
        await WriteAsync(context, StatusCodes.Status200OK, new CertificatesResponse { Name = name, Certificates = certificates, Settings = Settings() },
            SupervisorJson.Default.CertificatesResponse).ConfigureAwait(false);
    }

    private Task ListAsync(HttpContext context)
    {
        var certificate = context.Connection.ClientCertificate;
        if (certificate is null || (NodeNames(certificate) is null && !NodeCertificates.IsAdmin(certificate)))
        {
            throw new SupervisorRefusal(StatusCodes.Status401Unauthorized, "the node list is for cluster members: present a member's or the operator's client certificate");
        }

        return WriteAsync(context, StatusCodes.Status200OK, new NodeListResponse(membership.List()), SupervisorJson.Default.NodeListResponse);
    }

    private NodeCertificateSet Sign(string name, IReadOnlyCollection<IPAddress> addresses, NodeCertificateRequests requests)
    {
        try
        {
            return NodeCertificates.Sign(pki, name, addresses, requests);
        }
        catch (CertificateRequestRefusedException ex)
        {
            throw new SupervisorRefusal(StatusCodes.Status422UnprocessableEntity, ex.Message);
        }
    }

    private MemberSettings Settings() => new()
    {
        HeartbeatSeconds = settings.HeartbeatSeconds,
        RenewWithinSeconds = (long)settings.RenewWithin.TotalSeconds,
        CaHash = pki.ServerCa.Hash,
    };

    /// <summary>The member a request comes from, by its client certificate.</summary>
    private static string MemberName(HttpContext context) =>
        context.Connection.ClientCertificate is { } certificate && NodeNames(certificate) is { } name
            ? name
            : throw new SupervisorRefusal(StatusCodes.Status401Unauthorized, "this call needs the node's client certificate (<data-dir>/agent/client.crt): join first");

    private static string? NodeNames(X509Certificate2 certificate) => NodeCertificates.NodeNameOf(certificate);

    private static SupervisorRefusal NotAMember(string name) =>
        new(StatusCodes.Status404NotFound, $"node {name} is not a member of this cluster (its record is gone): join again with the token");

    private static DateTimeOffset ExpiryOf(string pem)
    {
        using var certificate = X509Certificate2.CreateFromPem(pem);
        return new DateTimeOffset(certificate.NotAfter.ToUniversalTime());
    }

    private static List<IPAddress> ParseAddresses(IEnumerable<string> addresses, List<string> problems)
    {
        var parsed = new List<IPAddress>();
        foreach (var address in addresses)
        {
            if (IPAddress.TryParse(address, out var ip) && !ip.Equals(IPAddress.Any) && !ip.Equals(IPAddress.IPv6Any))
            {
                if (!parsed.Contains(ip))
                {
                    parsed.Add(ip);
                }
            }
            else
            {
                problems.Add($"node address \"{address}\" is not an IP address (--node-ip)");
            }
        }

        return parsed;
    }

    private static void CheckAdvertisement(NodeAdvertisement advertisement, List<string> problems)
    {
        if (advertisement.Holds.Count + advertisement.Receiving.Count > NodeAdvertisement.MaxDigests)
        {
            problems.Add($"an advertisement may list at most {NodeAdvertisement.MaxDigests} digests");
            return;
        }

        var bad = advertisement.Holds.Concat(advertisement.Receiving).FirstOrDefault(d => !Digest.TryParse(d, out _));
        if (bad is not null)
        {
            problems.Add($"advertised digest \"{bad}\" is not a digest (algorithm:hex)");
        }
    }

    private static async Task<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> type)
        where T : class
    {
        if (context.Request.ContentLength > MaxJoinBytes && typeof(T) != typeof(HeartbeatRequest))
        {
            throw new SupervisorRefusal(StatusCodes.Status413PayloadTooLarge, $"the request is larger than {MaxJoinBytes} bytes");
        }

        try
        {
            return await JsonSerializer.DeserializeAsync(context.Request.Body, type, context.RequestAborted).ConfigureAwait(false)
                ?? throw new SupervisorRefusal(StatusCodes.Status400BadRequest, "the request body is empty");
        }
        catch (JsonException ex)
        {
            throw new SupervisorRefusal(StatusCodes.Status400BadRequest, $"the request body is not a valid {typeof(T).Name}: {ex.Message}");
        }
    }

    private static async Task WriteAsync<T>(HttpContext context, int status, T value, JsonTypeInfo<T> type)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, value, type, context.RequestAborted).ConfigureAwait(false);
    }

    private static Task WriteTextAsync(HttpContext context, string text)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text, context.RequestAborted);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} joined as {Role} from {Remote} with the {Token}")]
    private static partial void LogJoined(ILogger logger, string node, string role, string remote, string token);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} renewed its certificates")]
    private static partial void LogRenewed(ILogger logger, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Path} from {Remote} ({Status}): {Reason}")]
    private static partial void LogRefused(ILogger logger, string path, string remote, int status, string reason);
}

/// <summary>What the supervisor tells members.</summary>
internal sealed record SupervisorSettings(int HeartbeatSeconds, TimeSpan RenewWithin, TimeProvider Time);
