namespace Airlock.Cluster;

/// <summary>
/// Where a joined node keeps its cluster identity: <c>&lt;data-dir&gt;/agent/</c> (beside the images directory and containerd's
/// files), every file mode 0600. The paths are stable so registries.yaml can point containerd at the client certificate.
/// </summary>
public sealed record AgentDirectory(string DataDirectory)
{
    /// <summary><c>&lt;data-dir&gt;/agent</c>.</summary>
    public string Root => Path.Combine(Path.GetFullPath(DataDirectory), "agent");

    /// <summary>The server CA bundle this node trusts (what <c>/cacerts</c> served, checked against the token's hash).</summary>
    public string ServerCa => Path.Combine(Root, "server-ca.crt");

    /// <summary>The client CA bundle: what a peer's client certificate must chain to.</summary>
    public string ClientCa => Path.Combine(Root, "client-ca.crt");

    /// <summary>The node's client certificate (<c>CN=system:node:NAME</c>) and chain.</summary>
    public string ClientCertificate => Path.Combine(Root, "client.crt");

    public string ClientKey => Path.Combine(Root, "client.key");

    /// <summary>The serving certificate of the node's peer mirror (<c>CN=NAME</c>, SANs its name and addresses) and chain.</summary>
    public string ServingCertificate => Path.Combine(Root, "serving.crt");

    public string ServingKey => Path.Combine(Root, "serving.key");

    /// <summary>The node password (K3s: /etc/rancher/node/password): proves this node owns its name when it joins again.</summary>
    public string NodePassword => Path.Combine(Root, "node-password");

    /// <summary>The random suffix <c>--with-node-id</c> adds to the node name, kept so the name stays the same.</summary>
    public string NodeId => Path.Combine(Root, "node-id");

    /// <summary>Which server this node joined and under which name.</summary>
    public string Membership => Path.Combine(Root, "membership.json");
}
