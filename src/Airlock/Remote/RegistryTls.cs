using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Airlock.Remote;

/// <summary>
/// Per-registry trust for the one shared socket handler: custom CA bundles, client certificates and
/// skip-verify, chosen by the TLS target host (registries.yaml <c>configs.&lt;host&gt;.tls</c> semantics).
/// </summary>
internal sealed class RegistryTls : IDisposable
{
    private readonly Dictionary<string, HostTrust> _byHost = new(StringComparer.OrdinalIgnoreCase);

    // Why the last handshake with each host was refused, in words that say what to change (see Explain).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SslPolicyErrors> _rejections = new(StringComparer.OrdinalIgnoreCase);
    private readonly bool _insecure;
    private readonly ILogger _logger;

    public RegistryTls(RemoteOptions options, ILogger logger)
    {
        _insecure = options.Insecure;
        _logger = logger;
        foreach (var (registry, tls) in options.Tls)
        {
            var (host, _) = RegistryEndpoint.Split(RegistryEndpoint.ApiHost(registry));
            _byHost[host.Trim('[', ']')] = HostTrust.Load(registry, tls);
        }
    }

    public SslClientAuthenticationOptions CreateSslOptions() => new()
    {
        RemoteCertificateValidationCallback = Validate,
        LocalCertificateSelectionCallback = SelectClientCertificate,
    };

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var host = (sender as SslStream)?.TargetHostName ?? string.Empty;
        _byHost.TryGetValue(host, out var trust);
        if (_insecure || trust?.SkipVerify == true)
        {
            return true;
        }

        if (errors == SslPolicyErrors.None)
        {
            _rejections.TryRemove(host, out _);
            return true;
        }

        // A private CA only repairs chain errors; a wrong name or a missing certificate stays fatal.
        if (trust?.Roots is { Count: > 0 } roots && errors == SslPolicyErrors.RemoteCertificateChainErrors && certificate is not null)
        {
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(roots);
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (chain is not null)
            {
                foreach (var element in chain.ChainElements.Skip(1))
                {
                    custom.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }

            using var leaf = new X509Certificate2(certificate);
            if (custom.Build(leaf))
            {
                _rejections.TryRemove(host, out _);
                return true;
            }
        }

        RemoteLog.CertificateRejected(_logger, host, host, errors.ToString());
        _rejections[host] = errors;
        return false;
    }

    /// <summary>
    /// What to change after the TLS handshake with <paramref name="host"/> (of <paramref name="registry"/>, whose
    /// registries.yaml <c>configs</c> entry holds its TLS settings) was refused here — an untrusted CA, a name the
    /// certificate does not carry — instead of .NET's "The remote certificate is invalid according to the validation
    /// procedure"; null when this host was not refused by certificate validation.
    /// </summary>
    public string? Explain(string host, string registry)
    {
        if (!_rejections.TryGetValue(host, out var errors))
        {
            return null;
        }

        _byHost.TryGetValue(host, out var trust);
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return $"{registry}'s certificate does not name {host}: use a name the certificate was issued for, or reissue it with this one "
                + $"(--tls-san for Airlock's own), or set configs.{registry}.tls.insecure_skip_verify, or --insecure";
        }

        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return $"{registry} sent no certificate";
        }

        return trust?.Roots is { Count: > 0 }
            ? $"{registry}'s certificate is not signed by the CA in configs.{registry}.tls.ca_file: give that file the CA that issued it, or --insecure"
            : $"{registry}'s certificate is not signed by a trusted CA: set configs.{registry}.tls.ca_file, or --insecure";
    }

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

    private sealed record HostTrust(X509Certificate2Collection Roots, X509Certificate2? ClientCertificate, bool SkipVerify)
    {
        public static HostTrust Load(string registry, RegistryTlsOptions tls)
        {
            var roots = new X509Certificate2Collection();
            if (!string.IsNullOrEmpty(tls.CaFile))
            {
                try
                {
                    roots.ImportFromPemFile(tls.CaFile);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
                {
                    throw new InvalidOperationException($"registry {registry}: ca_file \"{tls.CaFile}\" cannot be read: {ex.Message}", ex);
                }

                if (roots.Count == 0)
                {
                    throw new InvalidOperationException($"registry {registry}: ca_file \"{tls.CaFile}\" holds no PEM certificate");
                }
            }

            X509Certificate2? client = null;
            if (!string.IsNullOrEmpty(tls.CertFile) || !string.IsNullOrEmpty(tls.KeyFile))
            {
                if (string.IsNullOrEmpty(tls.CertFile) || string.IsNullOrEmpty(tls.KeyFile))
                {
                    throw new InvalidOperationException($"registry {registry}: cert_file and key_file must be given together");
                }

                try
                {
                    using var pem = X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile);
                    // An ephemeral PEM key cannot always be used by the TLS stack; a PKCS#12 round trip makes it persistent.
                    client = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
                {
                    throw new InvalidOperationException($"registry {registry}: client certificate \"{tls.CertFile}\" / key \"{tls.KeyFile}\" cannot be loaded: {ex.Message}", ex);
                }
            }

            return new HostTrust(roots, client, tls.InsecureSkipVerify);
        }
    }
}
