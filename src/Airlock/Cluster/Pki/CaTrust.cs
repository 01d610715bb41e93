using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Airlock.Tls;

namespace Airlock.Cluster.Pki;

/// <summary>
/// Certificate checks against the cluster's own CAs only (never the machine's trust store): what the supervisor API, the
/// embedded registry and peers use for both sides of mutual TLS.
/// </summary>
public static class CaTrust
{
    /// <summary>
    /// True when <paramref name="certificate"/>, with the intermediates in <paramref name="chain"/> (e.g. a cross-signed CA),
    /// chains to one of <paramref name="anchors"/> and every certificate on the way is valid at <paramref name="at"/>.
    /// </summary>
    public static bool Verifies(X509Certificate2Collection anchors, X509Certificate2 certificate, X509Certificate2Collection? chain, DateTimeOffset at) =>
        CertificateTrust.ChainsTo(certificate, anchors, at, chain);

    /// <summary>
    /// A TLS callback that accepts a remote certificate chaining to <paramref name="anchors"/> at the time
    /// <paramref name="timeProvider"/> gives, with the intermediates the remote sent; <paramref name="checkName"/> also requires
    /// the certificate to name the host connected to (a client checking a server).
    /// </summary>
    public static RemoteCertificateValidationCallback Callback(Func<X509Certificate2Collection> anchors, TimeProvider timeProvider, bool checkName) =>
        (_, certificate, chain, errors) => certificate is not null
            && Accepts(anchors(), certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()), chain, errors, timeProvider, checkName);

    /// <summary>The check of <see cref="Callback"/> in the shape Kestrel's client certificate validation takes.</summary>
    public static bool Accepts(X509Certificate2Collection anchors, X509Certificate2 certificate, X509Chain? chain, SslPolicyErrors errors, TimeProvider timeProvider, bool checkName)
    {
        if (checkName && errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return false;
        }

        // What the remote sent beyond its leaf: the platform puts it in the chain's extra store, and whatever of it the
        // platform could place in the chain it built against the machine's roots.
        var sent = new X509Certificate2Collection();
        if (chain is not null)
        {
            sent.AddRange(chain.ChainPolicy.ExtraStore);
            foreach (var element in chain.ChainElements)
            {
                sent.Add(element.Certificate);
            }
        }

        return Verifies(anchors, certificate, sent, timeProvider.GetUtcNow());
    }
}
