using System.Security.Cryptography.X509Certificates;

namespace Airlock.Tls;

/// <summary>
/// Whether a certificate chains to roots of our own choosing (a registry's <c>ca_file</c>, a cluster CA)
/// rather than to the system store: the one place a custom-root chain is built.
/// </summary>
public static class CertificateTrust
{
    /// <summary>
    /// True when <paramref name="certificate"/> chains to one of <paramref name="roots"/> (through
    /// <paramref name="intermediates"/>, e.g. what the server sent) and is valid at <paramref name="at"/>.
    /// Revocation is not checked: air-gapped sites have no CRL or OCSP responder to ask.
    /// </summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2Collection roots, DateTimeOffset at,
        IEnumerable<X509Certificate2>? intermediates = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(roots);
        if (roots.Count == 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = at.UtcDateTime;
        foreach (var intermediate in intermediates ?? [])
        {
            chain.ChainPolicy.ExtraStore.Add(intermediate);
        }

        return chain.Build(certificate);
    }
}
