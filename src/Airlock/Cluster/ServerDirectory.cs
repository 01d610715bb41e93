namespace Airlock.Cluster;

/// <summary>Where <c>airlock server</c> keeps its state: <c>&lt;data-dir&gt;/server/</c>, as K3s does.</summary>
public sealed record ServerDirectory(string DataDirectory)
{
    /// <summary><c>&lt;data-dir&gt;/server</c>.</summary>
    public string Root => Path.Combine(Path.GetFullPath(DataDirectory), "server");

    /// <summary>The CAs and the server's certificates.</summary>
    public string Tls => Path.Combine(Root, "tls");

    /// <summary>The full server join token (<c>K10…::server:…</c>), mode 0600.</summary>
    public string Token => Path.Combine(Root, "token");

    /// <summary>The full agent join token (<c>K10…::node:…</c>), when <c>--agent-token</c> was given.</summary>
    public string AgentToken => Path.Combine(Root, "agent-token");

    /// <summary>One JSON file per member.</summary>
    public string Nodes => Path.Combine(Root, "nodes");

    /// <summary>Held (flock) by the running server: certificate rotation refuses while it is.</summary>
    public string Lock => Path.Combine(Root, "server.lock");

    /// <summary>A backup of <see cref="Tls"/> made at <paramref name="unixTime"/>: <c>server/tls-&lt;unix time&gt;</c>.</summary>
    public string TlsBackup(long unixTime) => Path.Combine(Root, $"tls-{unixTime}");
}
