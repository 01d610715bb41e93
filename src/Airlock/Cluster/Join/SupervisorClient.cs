using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Supervisor;

namespace Airlock.Cluster.Join;

/// <summary>The supervisor refused a request; <see cref="Exception.Message"/> is its explanation.</summary>
public sealed class SupervisorException(HttpStatusCode status, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;
}

/// <summary>
/// A node's HTTPS client of the supervisor API. It trusts only the cluster's CA bundle it was given (and checks that the
/// server's certificate names the host it connects to), and presents the node's client certificate with its chain once it
/// has one. <see cref="FetchCaBundleAsync"/> is the one request made before the bundle is known: its answer is checked
/// against the token's hash before anything else is sent.
/// </summary>
internal sealed class SupervisorClient : IDisposable
{
    private readonly HttpClient _http;

    public SupervisorClient(Uri server, X509Certificate2Collection trusted, SslStreamCertificateContext? clientCertificate, TimeProvider time, TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = timeout, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        handler.SslOptions.RemoteCertificateValidationCallback = CaTrust.Callback(() => trusted, time, checkName: true);
        handler.SslOptions.ClientCertificateContext = clientCertificate;
        _http = new HttpClient(handler) { BaseAddress = server, Timeout = timeout };
    }

    /// <summary>
    /// GET /cacerts with no trust at all: whatever answers could be anyone, so the caller compares the bytes with the token's
    /// hash before trusting them, and sends nothing else over this connection.
    /// </summary>
    public static async Task<byte[]> FetchCaBundleAsync(Uri server, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler { ConnectTimeout = timeout };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        using var http = new HttpClient(handler) { Timeout = timeout };
        using var response = await http.GetAsync(new Uri(server, SupervisorPaths.CaCerts), cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new SupervisorException(response.StatusCode, $"{server} answered {(int)response.StatusCode} to GET {SupervisorPaths.CaCerts}: is it an airlock server?");
        }

        return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>GET /cacerts over the trusted connection (the bundle may have changed since: a CA rotation).</summary>
    public Task<byte[]> GetCaBundleAsync(CancellationToken cancellationToken) => _http.GetByteArrayAsync(SupervisorPaths.CaCerts, cancellationToken);

    public Task<CertificatesResponse> JoinAsync(string user, string secret, JoinRequest request, CancellationToken cancellationToken)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, SupervisorPaths.Join)
        {
            Content = Json(request, SupervisorJson.Default.JoinRequest),
        };
        message.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{secret}")));
        return SendAsync(message, SupervisorJson.Default.CertificatesResponse, cancellationToken);
    }

    public Task<MemberSettings> HeartbeatAsync(HeartbeatRequest request, CancellationToken cancellationToken) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Post, SupervisorPaths.Heartbeat) { Content = Json(request, SupervisorJson.Default.HeartbeatRequest) },
            SupervisorJson.Default.MemberSettings, cancellationToken);

    public Task<CertificatesResponse> RenewAsync(RenewRequest request, CancellationToken cancellationToken) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Post, SupervisorPaths.Renew) { Content = Json(request, SupervisorJson.Default.RenewRequest) },
            SupervisorJson.Default.CertificatesResponse, cancellationToken);

    public async Task<IReadOnlyList<ClusterNode>> ListNodesAsync(CancellationToken cancellationToken) =>
        (await SendAsync(new HttpRequestMessage(HttpMethod.Get, SupervisorPaths.Nodes), SupervisorJson.Default.NodeListResponse, cancellationToken).ConfigureAwait(false)).Nodes;

    private async Task<T> SendAsync<T>(HttpRequestMessage message, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        using (message)
        {
            using var response = await _http.SendAsync(message, cancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                string explanation;
                try
                {
                    explanation = JsonSerializer.Deserialize(body, SupervisorJson.Default.ErrorResponse)?.Error ?? "";
                }
                catch (JsonException)
                {
                    explanation = Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 200)));
                }

                throw new SupervisorException(response.StatusCode, explanation.Length > 0 ? explanation : $"the server answered {(int)response.StatusCode}");
            }

            try
            {
                return JsonSerializer.Deserialize(body, type) ?? throw new JsonException("empty");
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"the server's answer to {message.RequestUri} is not what the supervisor API sends: {ex.Message}", ex);
            }
        }
    }

    private static ByteArrayContent Json<T>(T value, JsonTypeInfo<T> type)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(value, type));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    public void Dispose() => _http.Dispose();
}
