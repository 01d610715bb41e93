using Airlock.Remote;
using Airlock.Tls;

namespace Airlock.Node;

/// <summary>
/// <c>registries.yaml</c> as K3s reads it (rancher/wharfie <c>Registry</c>): <c>mirrors</c> and <c>configs</c> keyed by
/// registry host, <c>"*"</c> for every registry without its own entry. Entries keep the order and line numbers of
/// the file so problems can be reported as <c>file:line</c> and output is stable.
/// </summary>
public sealed class RegistriesFile
{
    public const string Wildcard = "*";

    public static readonly RegistriesFile Empty = new("registries.yaml", [], []);

    public RegistriesFile(string source, IReadOnlyList<RegistryMirror> mirrors, IReadOnlyList<RegistryConfig> configs)
    {
        Source = source;
        Mirrors = mirrors;
        Configs = configs;
    }

    /// <summary>The file name used in problem messages.</summary>
    public string Source { get; }

    public IReadOnlyList<RegistryMirror> Mirrors { get; }

    public IReadOnlyList<RegistryConfig> Configs { get; }

    public RegistryMirror? FindMirror(string key) => Mirrors.FirstOrDefault(m => m.Key == key);

    public RegistryConfig? FindConfig(string key) => Configs.FirstOrDefault(c => c.Key == key);

    /// <summary>
    /// K3s's <c>configForHost</c>: Docker Hub's settings may be keyed <c>registry-1.docker.io</c> or <c>docker.io</c>
    /// (the former wins); there is no fallback to <c>configs["*"]</c>.
    /// </summary>
    public RegistryConfig? ConfigForHost(string host)
    {
        if (host == RegistryHost.DockerHub && FindConfig(RegistryHost.DockerHubApiHost) is { } hub)
        {
            return hub;
        }

        return FindConfig(host);
    }
}

/// <summary>A <c>mirrors.&lt;key&gt;</c> entry: endpoints in the order given and repository-name rewrites.</summary>
public sealed record RegistryMirror(string Key, int Line, IReadOnlyList<MirrorEndpoint> Endpoints, IReadOnlyList<RewriteRule> Rewrites);

public sealed record MirrorEndpoint(string Address, int Line);

/// <summary>A regex applied to the repository name before a request to the mirror, and its replacement (<c>$1</c> groups).</summary>
public sealed record RewriteRule(string Pattern, string Replacement, int Line);

/// <summary>
/// A <c>configs.&lt;key&gt;</c> entry. <see cref="Auth"/> and <see cref="Tls"/> are null only when absent or null in the
/// file; a block whose fields are all empty is present (K3s then still writes a hosts.toml for the registry).
/// </summary>
public sealed record RegistryConfig(string Key, int Line, RegistryAuth? Auth, RegistryTls? Tls);

/// <summary><c>auth</c>: basic credentials, a pre-encoded <c>auth</c> string or an identity token; only config.toml carries it.</summary>
public sealed record RegistryAuth(int Line, string? Username, string? Password, string? Auth, string? IdentityToken);

/// <summary><c>tls</c> as the file gives it, with the lines of its files: server CA, client certificate pair, and whether to skip server verification.</summary>
public sealed record RegistryTls(int Line, FileSetting? CaFile, FileSetting? CertFile, FileSetting? KeyFile, bool InsecureSkipVerify)
{
    /// <summary>The settings themselves, as every TLS client takes them.</summary>
    public TlsSettings Settings => new() { CaFile = CaFile?.Path, CertFile = CertFile?.Path, KeyFile = KeyFile?.Path, InsecureSkipVerify = InsecureSkipVerify };
}

/// <summary>A path from the file, with the line it was on (for "cannot read" problems).</summary>
public sealed record FileSetting(string Path, int Line);
