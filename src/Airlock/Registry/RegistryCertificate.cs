using System.Text;
using Airlock.Tls;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry;

/// <summary>
/// The registry's self-signed TLS (<c>--tls-self-signed</c>): its CA and server certificate under
/// <c>&lt;data-dir&gt;/registry/tls</c>, and the registries.yaml snippet that makes a node trust it.
/// </summary>
public static class RegistryCertificate
{
    /// <summary>The server certificate's CN; its CA is "Airlock Registry CA".</summary>
    public const string CommonName = "Airlock Registry";

    /// <summary>Where the self-signed material lives in a data directory.</summary>
    public static string Directory(string dataDirectory) => Path.Combine(dataDirectory, "registry", "tls");

    /// <summary>Loads or makes the CA and server certificate (see <see cref="ServerCertificates.EnsureSelfSigned"/>).</summary>
    public static ServerTlsMaterial EnsureSelfSigned(string dataDirectory, IEnumerable<string> extraNames, TimeProvider timeProvider, ILogger? logger = null) =>
        ServerCertificates.EnsureSelfSigned(Directory(dataDirectory), CommonName, extraNames, timeProvider, logger);

    /// <summary>
    /// The <c>registries.yaml</c> (K3s format) snippet a node needs to trust this registry:
    /// <code>
    /// configs:
    ///   "registry.example:5000":
    ///     tls:
    ///       ca_file: "/var/lib/airlock/registry/tls/ca.crt"
    /// </code>
    /// <paramref name="caFile"/> is where the CA file lives on the node. With <paramref name="username"/> and
    /// <paramref name="password"/> (when pulls need credentials) an <c>auth:</c> block with them follows <c>tls:</c>.
    /// </summary>
    public static string RenderRegistriesYaml(string hostAndPort, string caFile, string? username = null, string? password = null)
    {
        var yaml = new StringBuilder()
            .Append("configs:\n")
            .Append("  ").Append(YamlQuote(hostAndPort)).Append(":\n")
            .Append("    tls:\n")
            .Append("      ca_file: ").Append(YamlQuote(caFile)).Append('\n');
        if (username is not null)
        {
            yaml.Append("    auth:\n")
                .Append("      username: ").Append(YamlQuote(username)).Append('\n')
                .Append("      password: ").Append(YamlQuote(password ?? "")).Append('\n');
        }

        return yaml.ToString();
    }

    private static string YamlQuote(string value)
    {
        var quoted = new StringBuilder("\"");
        foreach (var c in value)
        {
            _ = c switch
            {
                '"' => quoted.Append("\\\""),
                '\\' => quoted.Append("\\\\"),
                _ when char.IsControl(c) => quoted.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => quoted.Append(c),
            };
        }

        return quoted.Append('"').ToString();
    }
}
