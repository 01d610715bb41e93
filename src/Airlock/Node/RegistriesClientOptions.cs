using Airlock.Remote;

namespace Airlock.Node;

/// <summary>
/// The <c>configs</c> of a <c>registries.yaml</c> as registry-client settings, so <c>airlock images</c> and
/// the node's pulls authenticate and verify TLS exactly as containerd will with the same file.
/// </summary>
public static class RegistriesClientOptions
{
    /// <summary><paramref name="options"/> with the file's settings applied in <see cref="RegistryHosts"/>' order.</summary>
    public static RemoteOptions Apply(RemoteOptions options, RegistriesFile file) => RegistryHosts.Apply(options, Settings(file));

    /// <summary>
    /// One entry per registry the file configures. <c>"*"</c> configs have no single host (K3s applies them only to the
    /// _default hosts.toml); Docker Hub's entry is <c>registry-1.docker.io</c>'s when both it and <c>docker.io</c> have one.
    /// </summary>
    public static IEnumerable<RegistryHostSettings> Settings(RegistriesFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in file.Configs.Where(c => c.Key != RegistriesFile.Wildcard))
        {
            var name = RegistryHost.CanonicalName(entry.Key);
            if (!seen.Add(name))
            {
                continue;
            }

            var config = file.ConfigForHost(name) ?? entry;
            yield return new RegistryHostSettings
            {
                Registry = name,
                Credential = config.Auth is { } auth ? new RegistryCredential(auth.Username, auth.Password, auth.Auth, auth.IdentityToken) : null,
                Tls = config.Tls?.Settings,
            };
        }
    }
}
