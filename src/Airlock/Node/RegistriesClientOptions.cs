using Airlock.Remote;
using Airlock.Tls;

namespace Airlock.Node;

/// <summary>
/// The <c>configs</c> of a <c>registries.yaml</c> as registry-client settings, so <c>airlock images</c> and
/// the node's pulls authenticate and verify TLS exactly as containerd will with the same file.
/// </summary>
public static class RegistriesClientOptions
{
    public static RemoteOptions Apply(RemoteOptions options, RegistriesFile file)
    {
        var credentials = new Dictionary<string, RegistryCredential>(StringComparer.OrdinalIgnoreCase);
        var tls = new Dictionary<string, TlsSettings>(options.Tls, StringComparer.OrdinalIgnoreCase);
        foreach (var config in file.Configs)
        {
            // "*" configs have no single host; K3s applies them only to the _default hosts.toml entry.
            if (config.Key == RegistriesFile.Wildcard)
            {
                continue;
            }

            if (config.Auth is { } auth)
            {
                credentials[config.Key] = new RegistryCredential(auth.Username, auth.Password, auth.Auth, auth.IdentityToken);
            }

            if (config.Tls is { } t)
            {
                tls[config.Key] = new TlsSettings
                {
                    CaFile = t.CaFile?.Path,
                    CertFile = t.CertFile?.Path,
                    KeyFile = t.KeyFile?.Path,
                    InsecureSkipVerify = t.InsecureSkipVerify,
                };
            }
        }

        return options with
        {
            Credentials = credentials.Count > 0 ? new StaticCredentialSource(credentials) : options.Credentials,
            Tls = tls,
        };
    }
}
