using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.Tls;

namespace Airlock.Cluster.Pki;

/// <summary>A node's two certificate signing requests (PEM): its client identity and its peer mirror's serving certificate.</summary>
public sealed record NodeCertificateRequests(string Client, string Serving);

/// <summary>What the server issued for a node: each certificate followed by its chain (PEM), and the CA bundles to trust.</summary>
public sealed record NodeCertificateSet(string Client, string Serving, string ServerCaBundle, string ClientCaBundle);

/// <summary>
/// The certificates a member holds, and what a member may ask for. A node's private keys never leave it: it sends CSRs, and
/// the server checks each against what that node may have before signing — the client certificate must be exactly
/// <c>CN=system:node:&lt;name&gt;, O=system:nodes</c> (Kubernetes's node identity) for TLS client use; the serving certificate
/// <c>CN=&lt;name&gt;</c> for TLS server use, with only the node's name, <c>localhost</c>, the addresses it registered and
/// loopback as SANs; neither may ask to be a CA or for any other extension. A request that asks for more is refused as a
/// whole, with every reason; the certificate itself is built from the server's own template, never from the request.
/// </summary>
public static class NodeCertificates
{
    public const string NodeOrganization = "system:nodes";
    public const string NodeCommonNamePrefix = "system:node:";

    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    public static string ClientCommonName(string nodeName) => NodeCommonNamePrefix + nodeName;

    /// <summary>The node a client certificate stands for (<c>CN=system:node:NAME, O=system:nodes</c>), or null.</summary>
    public static string? NodeNameOf(X509Certificate2 clientCertificate)
    {
        var commonName = clientCertificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        var organizations = Rdns(clientCertificate.SubjectName, "2.5.4.10");
        return commonName.StartsWith(NodeCommonNamePrefix, StringComparison.Ordinal) && organizations.SequenceEqual([NodeOrganization])
            ? commonName[NodeCommonNamePrefix.Length..]
            : null;
    }

    /// <summary>True for the operator's certificate (<c>O=system:masters</c>).</summary>
    public static bool IsAdmin(X509Certificate2 clientCertificate) =>
        Rdns(clientCertificate.SubjectName, "2.5.4.10").Contains(ServerPki.AdminOrganization);

    /// <summary>
    /// Checks both requests for node <paramref name="nodeName"/> with <paramref name="addresses"/> and signs them; throws
    /// <see cref="CertificateRequestRefusedException"/> with every problem when either asks for what the node may not have.
    /// </summary>
    public static NodeCertificateSet Sign(ServerPki pki, string nodeName, IReadOnlyCollection<IPAddress> addresses, NodeCertificateRequests requests)
    {
        var problems = new List<string>();
        var client = Load(requests.Client, "client", problems);
        var serving = Load(requests.Serving, "serving", problems);
        if (client is not null)
        {
            CheckSubject(client, "client", [("2.5.4.10", NodeOrganization), ("2.5.4.3", ClientCommonName(nodeName))], problems);
            CheckExtensions(client, "client", ClientAuth, allowNames: false, nodeName, addresses, problems, out _, out _);
        }

        List<string> dns = [];
        List<IPAddress> ips = [];
        if (serving is not null)
        {
            CheckSubject(serving, "serving", [("2.5.4.3", nodeName)], problems);
            CheckExtensions(serving, "serving", ServerAuth, allowNames: true, nodeName, addresses, problems, out dns, out ips);
        }

        if (problems.Count > 0)
        {
            throw new CertificateRequestRefusedException(problems);
        }

        if (!dns.Contains(nodeName, StringComparer.OrdinalIgnoreCase))
        {
            dns.Insert(0, nodeName);
        }

        using var clientCertificate = pki.ClientCa.Issue(
            new LeafCertificateRequest(ClientCommonName(nodeName), [], [], ServerPki.LeafValidity, CertificateUsage.Client, NodeOrganization), client!.PublicKey);
        using var servingCertificate = pki.ServerCa.Issue(new LeafCertificateRequest(nodeName, dns, ips, ServerPki.LeafValidity), serving!.PublicKey);
        return new NodeCertificateSet(
            WithChain(clientCertificate, pki.ClientCa),
            WithChain(servingCertificate, pki.ServerCa),
            Encoding.ASCII.GetString(pki.ServerCa.BundlePem),
            Encoding.ASCII.GetString(pki.ClientCa.BundlePem));
    }

    /// <summary>A CSR for a node's certificate, signed with <paramref name="key"/> (what an agent sends).</summary>
    public static string CreateRequest(ECDsa key, string nodeName, bool serving, IReadOnlyCollection<IPAddress> addresses)
    {
        var subject = new X500DistinguishedNameBuilder();
        if (!serving)
        {
            subject.AddOrganizationName(NodeOrganization);
        }

        subject.AddCommonName(serving ? nodeName : ClientCommonName(nodeName));
        var request = new CertificateRequest(subject.Build(), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(serving ? ServerAuth : ClientAuth)], critical: false));
        if (serving)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName(nodeName);
            foreach (var address in addresses)
            {
                names.AddIpAddress(address);
            }

            request.CertificateExtensions.Add(names.Build());
        }

        return request.CreateSigningRequestPem();
    }

    /// <summary>The certificate and the intermediates to send with it, as PEM.</summary>
    private static string WithChain(X509Certificate2 certificate, ClusterCa ca) =>
        string.Join("\n", new[] { certificate }.Concat(ca.Chain).Select(c => c.ExportCertificatePem())) + "\n";

    private static CertificateRequest? Load(string pem, string which, List<string> problems)
    {
        CertificateRequest request;
        try
        {
            // Default options check the request's signature: the node proves it holds the key.
            request = CertificateRequest.LoadSigningRequestPem(pem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            problems.Add($"the {which} certificate request is not a signed PKCS#10 CSR in PEM: {ex.Message}");
            return null;
        }

        var key = request.PublicKey;
        var acceptable = key.Oid.Value switch
        {
            "1.2.840.10045.2.1" => key.GetECDsaPublicKey() is { KeySize: 256 or 384 },
            "1.2.840.113549.1.1.1" => key.GetRSAPublicKey() is { KeySize: >= 2048 },
            _ => false,
        };
        if (!acceptable)
        {
            problems.Add($"the {which} certificate request's key is not ECDSA P-256/P-384 or RSA of 2048 bits or more");
        }

        return request;
    }

    private static void CheckSubject(CertificateRequest request, string which, (string Oid, string Value)[] expected, List<string> problems)
    {
        var actual = request.SubjectName.EnumerateRelativeDistinguishedNames()
            .Select(rdn => rdn.HasMultipleElements ? (Oid: "+", Value: "") : (Oid: rdn.GetSingleElementType().Value ?? "", Value: rdn.GetSingleElementValue() ?? ""))
            .OrderBy(p => p.Oid, StringComparer.Ordinal)
            .ToList();
        if (!actual.SequenceEqual(expected.OrderBy(p => p.Oid, StringComparer.Ordinal)))
        {
            var wanted = new X500DistinguishedNameBuilder();
            foreach (var (oid, value) in expected)
            {
                wanted.Add(oid, value);
            }

            problems.Add($"the {which} certificate request asks for subject \"{request.SubjectName.Name}\"; this node may only have \"{wanted.Build().Name}\"");
        }
    }

    private static void CheckExtensions(CertificateRequest request, string which, string usage, bool allowNames, string nodeName,
        IReadOnlyCollection<IPAddress> addresses, List<string> problems, out List<string> dns, out List<IPAddress> ips)
    {
        dns = [];
        ips = [];
        foreach (var extension in request.CertificateExtensions)
        {
            switch (extension)
            {
                case X509BasicConstraintsExtension constraints when constraints.CertificateAuthority:
                    problems.Add($"the {which} certificate request asks to be a CA; nodes get leaf certificates only");
                    break;
                case X509BasicConstraintsExtension:
                case X509KeyUsageExtension { KeyUsages: var keyUsages } when (keyUsages & ~(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.KeyAgreement)) == 0:
                case X509SubjectKeyIdentifierExtension:
                    break;
                case X509KeyUsageExtension other:
                    problems.Add($"the {which} certificate request asks for key usage {other.KeyUsages}; a node certificate may only sign TLS handshakes");
                    break;
                case X509EnhancedKeyUsageExtension enhanced:
                    foreach (var oid in enhanced.EnhancedKeyUsages)
                    {
                        if (oid.Value != usage)
                        {
                            problems.Add($"the {which} certificate request asks for extended key usage {oid.FriendlyName ?? oid.Value}; "
                                + $"a node's {which} certificate is for {(usage == ServerAuth ? "TLS server" : "TLS client")} authentication only");
                        }
                    }

                    break;
                case X509SubjectAlternativeNameExtension names when allowNames:
                    foreach (var name in names.EnumerateDnsNames())
                    {
                        if (string.Equals(name, nodeName, StringComparison.OrdinalIgnoreCase) || string.Equals(name, "localhost", StringComparison.OrdinalIgnoreCase))
                        {
                            dns.Add(name.ToLowerInvariant());
                        }
                        else
                        {
                            problems.Add($"the {which} certificate request asks for the name \"{name}\"; node {nodeName} may only have its own name and localhost");
                        }
                    }

                    foreach (var address in names.EnumerateIPAddresses())
                    {
                        if (IPAddress.IsLoopback(address) || addresses.Contains(address))
                        {
                            ips.Add(address);
                        }
                        else
                        {
                            problems.Add($"the {which} certificate request asks for the address {address}, which node {nodeName} did not register "
                                + "(give it with --node-ip)");
                        }
                    }

                    if (names.RawData.Length > 0 && !HasOnlyDnsAndIp(names))
                    {
                        problems.Add($"the {which} certificate request asks for subject alternative names other than DNS names and IP addresses");
                    }

                    break;
                case X509SubjectAlternativeNameExtension:
                    problems.Add($"the {which} certificate request asks for subject alternative names; a client certificate names the node in its subject only");
                    break;
                default:
                    problems.Add($"the {which} certificate request asks for extension {extension.Oid?.FriendlyName ?? extension.Oid?.Value}, which node certificates do not carry");
                    break;
            }
        }
    }

    /// <summary>True when every general name is a dNSName ([2]) or iPAddress ([7]).</summary>
    private static bool HasOnlyDnsAndIp(X509SubjectAlternativeNameExtension names)
    {
        try
        {
            var reader = new System.Formats.Asn1.AsnReader(names.RawData, System.Formats.Asn1.AsnEncodingRules.DER);
            var sequence = reader.ReadSequence();
            while (sequence.HasData)
            {
                var tag = sequence.PeekTag();
                if (tag.TagClass != System.Formats.Asn1.TagClass.ContextSpecific || tag.TagValue is not (2 or 7))
                {
                    return false;
                }

                sequence.ReadEncodedValue();
            }

            return true;
        }
        catch (System.Formats.Asn1.AsnContentException)
        {
            return false;
        }
    }

    private static List<string> Rdns(X500DistinguishedName name, string oid) =>
        name.EnumerateRelativeDistinguishedNames()
            .Where(rdn => !rdn.HasMultipleElements && rdn.GetSingleElementType().Value == oid)
            .Select(rdn => rdn.GetSingleElementValue() ?? "")
            .ToList();
}

/// <summary>A certificate signing request asks for what its node may not have; <see cref="Exception.Message"/> lists every reason.</summary>
public sealed class CertificateRequestRefusedException(IReadOnlyList<string> problems) : Exception(string.Join("; ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
