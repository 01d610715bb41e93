using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Airlock.Tls;

/// <summary>
/// Per-server trust for one shared socket handler, chosen by the TLS target host name: custom CA bundles,
/// client certificates and skip-verify (registries.yaml <c>configs.&lt;host&gt;.tls</c> semantics). Files are
/// read once, when the trust is made, so a missing or broken CA fails before any connection.
/// </summary>
public sealed partial class ClientTrust : IDisposable
{
    private readonly Dictionary<string, HostTrust> _byHost = new(StringComparer.OrdinalIgnoreCase);

    // Why the last handshake with each host was refused, so the caller can say what to change (see Rejection).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SslPolicyErrors> _rejections = new(StringComparer.OrdinalIgnoreCase);
    private readonly bool _skipEverywhere;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;

    /// <param name="byServer">Settings keyed by server (<c>host</c>, <c>host:port</c> or <c>[v6]:port</c>); a port is
    /// ignored for matching, since TLS only sees the host name.</param>
    /// <param name="skipEverywhere">Accept any certificate from any server (<c>--insecure</c>).</param>
    /// <param name="timeProvider">The clock certificates are checked against.</param>
    /// <param name="logger">Where rejected certificates are logged.</param>
    /// <exception cref="TlsMaterialException">A CA, certificate or key file cannot be used; the message names it and the server.</exception>
    public ClientTrust(IEnumerable<KeyValuePair<string, TlsSettings>> byServer, bool skipEverywhere, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(byServer);
        _skipEverywhere = skipEverywhere;
        _timeProvider = timeProvider;
        _logger = logger;
        try
        {
            foreach (var (server, settings) in byServer)
            {
                _byHost[HostName(server)] = HostTrust.Load(server, settings);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>TLS options for a <see cref="System.Net.Http.SocketsHttpHandler"/> whose connections this trust checks.</summary>
    public SslClientAuthenticationOptions CreateSslOptions() => new()
    {
        RemoteCertificateValidationCallback = Validate,
        LocalCertificateSelectionCallback = SelectClientCertificate,
    };

    /// <summary>The host part of <c>host</c>, <c>host:port</c>, <c>[v6]</c> or <c>[v6]:port</c>.</summary>
    internal static string HostName(string server)
    {
        if (server.StartsWith('['))
        {
            var close = server.IndexOf(']', StringComparison.Ordinal);
            return close > 0 ? server[1..close] : server;
        }

        var colon = server.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && server.LastIndexOf(':') == colon ? server[..colon] : server;
    }

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var host = (sender as SslStream)?.TargetHostName ?? string.Empty;
        _byHost.TryGetValue(host, out var trust);
        if (_skipEverywhere || trust?.SkipVerify == true || errors == SslPolicyErrors.None)
        {
            _rejections.TryRemove(host, out _);
            return true;
        }

        // A private CA only repairs chain errors; a wrong name or a missing certificate stays fatal.
        if (trust?.Roots is { Count: > 0 } roots && errors == SslPolicyErrors.RemoteCertificateChainErrors && certificate is not null)
        {
            using var leaf = new X509Certificate2(certificate);
            if (CertificateTrust.ChainsTo(leaf, roots, _timeProvider.GetUtcNow(), chain?.ChainElements.Skip(1).Select(e => e.Certificate)))
            {
                _rejections.TryRemove(host, out _);
                return true;
            }
        }

        LogRejected(_logger, host, errors.ToString());
        _rejections[host] = errors;
        return false;
    }

    /// <summary>
    /// Why the last TLS handshake with <paramref name="host"/> was refused by this trust (an untrusted chain, a name the
    /// certificate does not carry), and whether a CA of its own was configured for it; null when it was not refused.
    /// Callers turn it into advice in their own terms (.NET's wording, "the remote certificate is invalid according to
    /// the validation procedure", says neither).
    /// </summary>
    public (SslPolicyErrors Errors, bool OwnCa)? Rejection(string host) =>
        _rejections.TryGetValue(host, out var errors) ? (errors, _byHost.TryGetValue(host, out var trust) && trust.Roots.Count > 0) : null;

    private X509Certificate? SelectClientCertificate(object sender, string targetHost, X509CertificateCollection localCertificates,
        X509Certificate? remoteCertificate, string[] acceptableIssuers) =>
        _byHost.TryGetValue(targetHost, out var trust) ? trust.ClientCertificate : null;

    public void Dispose()
    {
        foreach (var trust in _byHost.Values)
        {
            trust.ClientCertificate?.Dispose();
            foreach (var root in trust.Roots)
            {
                root.Dispose();
            }
        }
    }

    [LoggerMessage(EventId = 9, Level = LogLevel.Warning, Message = "Rejected the server certificate of {Host}: {Errors}")]
    private static partial void LogRejected(ILogger logger, string host, string errors);

    private sealed record HostTrust(X509Certificate2Collection Roots, X509Certificate2? ClientCertificate, bool SkipVerify)
    {
        public static HostTrust Load(string server, TlsSettings settings)
        {
            var roots = string.IsNullOrEmpty(settings.CaFile) ? [] : Named(server, () => PemFiles.ReadCertificates(settings.CaFile, "CA"));
            X509Certificate2? client = null;
            if (!string.IsNullOrEmpty(settings.CertFile) || !string.IsNullOrEmpty(settings.KeyFile))
            {
                if (string.IsNullOrEmpty(settings.CertFile) || string.IsNullOrEmpty(settings.KeyFile))
                {
                    throw new TlsMaterialException($"{server}: cert_file and key_file must be given together");
                }

                var (pem, chain) = Named(server, () => PemFiles.ReadWithKey(settings.CertFile, settings.KeyFile));
                using (pem)
                {
                    foreach (var extra in chain)
                    {
                        extra.Dispose();
                    }

                    // An ephemeral PEM key cannot always be used by the TLS stack; a PKCS#12 round trip makes it persistent.
                    client = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
                }
            }

            return new HostTrust(roots, client, settings.InsecureSkipVerify);
        }

        private static T Named<T>(string server, Func<T> read)
        {
            try
            {
                return read();
            }
            catch (TlsMaterialException e)
            {
                throw new TlsMaterialException($"{server}: {e.Message}", e);
            }
        }
    }
}
