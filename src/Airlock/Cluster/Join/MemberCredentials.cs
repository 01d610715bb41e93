using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Supervisor;
using Airlock.IO;
using Airlock.Tls;

namespace Airlock.Cluster.Join;

/// <summary>What <c>agent/membership.json</c> records: the server this node joined and the name it has there.</summary>
public sealed record AgentMembership(string Server, string Name, DateTimeOffset Joined);

/// <summary>
/// A member's identity, as kept under <c>&lt;data-dir&gt;/agent/</c> (every file 0600): its client certificate
/// (<c>CN=system:node:NAME</c>) and the serving certificate of its peer mirror, each with its key and chain, and the two CA
/// bundles it trusts. The peer mirror builds its mutual TLS from here: <see cref="CreateServerOptions"/> for the side that
/// serves, <see cref="CreateClientOptions"/> for the side that fetches.
/// </summary>
public sealed class MemberCredentials : IDisposable
{
    private MemberCredentials(AgentMembership membership, X509Certificate2 client, X509Certificate2Collection clientChain, X509Certificate2 serving,
        X509Certificate2Collection servingChain, byte[] serverCaBundle, X509Certificate2Collection serverCas, X509Certificate2Collection clientCas)
    {
        Membership = membership;
        ClientCertificate = client;
        ClientChain = clientChain;
        ServingCertificate = serving;
        ServingChain = servingChain;
        ServerCaBundle = serverCaBundle;
        ServerCas = serverCas;
        ClientCas = clientCas;
    }

    public AgentMembership Membership { get; }

    public string NodeName => Membership.Name;

    /// <summary>The node's client certificate, with its private key.</summary>
    public X509Certificate2 ClientCertificate { get; }

    public X509Certificate2Collection ClientChain { get; }

    /// <summary>The peer mirror's serving certificate, with its private key.</summary>
    public X509Certificate2 ServingCertificate { get; }

    public X509Certificate2Collection ServingChain { get; }

    /// <summary>The server CA bundle as served at <c>/cacerts</c> when this node last learned it.</summary>
    public byte[] ServerCaBundle { get; }

    public string ServerCaHash => Tokens.JoinToken.HashCaBundle(ServerCaBundle);

    /// <summary>What a server's or a peer's serving certificate must chain to.</summary>
    public X509Certificate2Collection ServerCas { get; }

    /// <summary>What a peer's client certificate must chain to.</summary>
    public X509Certificate2Collection ClientCas { get; }

    /// <summary>When the earlier of the two certificates expires.</summary>
    public DateTimeOffset NotAfter => new(new[] { ClientCertificate.NotAfter, ServingCertificate.NotAfter }.Min().ToUniversalTime());

    /// <summary>The client certificate and its chain, for a TLS client (<c>SslClientAuthenticationOptions.ClientCertificateContext</c>).</summary>
    public SslStreamCertificateContext ClientContext() => SslStreamCertificateContext.Create(ClientCertificate, ClientChain, offline: true);

    /// <summary>
    /// Server-side TLS of a member's service (its peer mirror): the serving certificate and chain, and a client certificate
    /// required and checked against the cluster's client CAs (the handler then reads the peer's name with
    /// <see cref="NodeCertificates.NodeNameOf"/>).
    /// </summary>
    public SslServerAuthenticationOptions CreateServerOptions(TimeProvider time)
    {
        var clientCas = ClientCas;
        return new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(ServingCertificate, ServingChain, offline: true),
            ClientCertificateRequired = true,
            RemoteCertificateValidationCallback = CaTrust.Callback(() => clientCas, time, checkName: false),
        };
    }

    /// <summary>Client-side TLS to a member (a peer, the server): its serving certificate checked against the server CAs and
    /// its name against <paramref name="host"/>; this node's client certificate presented.</summary>
    public SslClientAuthenticationOptions CreateClientOptions(string host, TimeProvider time)
    {
        var serverCas = ServerCas;
        return new SslClientAuthenticationOptions
        {
            TargetHost = host,
            ClientCertificateContext = ClientContext(),
            RemoteCertificateValidationCallback = CaTrust.Callback(() => serverCas, time, checkName: true),
        };
    }

    /// <summary>
    /// Loads the identity; null when this node has not joined (no <c>membership.json</c>). Throws
    /// <see cref="TlsMaterialException"/> naming the file when one cannot be used (truncated, a key that does not match).
    /// </summary>
    public static MemberCredentials? Load(AgentDirectory directory)
    {
        if (!File.Exists(directory.Membership))
        {
            return null;
        }

        AgentMembership membership;
        try
        {
            membership = JsonSerializer.Deserialize(File.ReadAllBytes(directory.Membership), JoinJson.Default.AgentMembership)
                ?? throw new JsonException("empty");
        }
        catch (JsonException ex)
        {
            throw new TlsMaterialException($"{directory.Membership}: not this node's membership record ({ex.Message})", ex);
        }

        var (client, clientChain) = PemFiles.ReadWithKey(directory.ClientCertificate, directory.ClientKey);
        var (serving, servingChain) = PemFiles.ReadWithKey(directory.ServingCertificate, directory.ServingKey);
        var serverCaBundle = ReadBundle(directory.ServerCa, out var serverCas);
        ReadBundle(directory.ClientCa, out var clientCas);
        return new MemberCredentials(membership, client, clientChain, serving, servingChain, serverCaBundle, serverCas, clientCas);
    }

    /// <summary>
    /// Writes what the server issued, with the keys made for it, every file atomically and 0600; <c>membership.json</c> last,
    /// so a crash before it leaves a node that joins again (with the same node password) rather than a half identity.
    /// </summary>
    internal static MemberCredentials Save(AgentDirectory directory, AgentMembership membership, NodeCertificateSet issued, ECDsa clientKey, ECDsa servingKey)
    {
        Directory.CreateDirectory(directory.Root, DirectoryOwner.Private);
        PemFiles.WriteKey(clientKey, directory.ClientKey);
        Write(directory.ClientCertificate, issued.Client);
        PemFiles.WriteKey(servingKey, directory.ServingKey);
        Write(directory.ServingCertificate, issued.Serving);
        Write(directory.ServerCa, issued.ServerCaBundle);
        Write(directory.ClientCa, issued.ClientCaBundle);
        AtomicFile.Write(directory.Membership, JsonSerializer.SerializeToUtf8Bytes(membership, JoinJson.Default.AgentMembership), AtomicFile.Private);
        return Load(directory)!;
    }

    /// <summary>What the server sent, as it sent it (0600 like every file of the identity).</summary>
    private static void Write(string path, string pem) => AtomicFile.Write(path, Encoding.ASCII.GetBytes(pem), AtomicFile.Private);

    private static byte[] ReadBundle(string path, out X509Certificate2Collection certificates)
    {
        certificates = PemFiles.ReadCertificates(path, "CA bundle");
        return File.ReadAllBytes(path);
    }

    public void Dispose()
    {
        ClientCertificate.Dispose();
        ServingCertificate.Dispose();
    }
}
