using System.Text;

namespace Airlock.Interop.Tests.Fixtures;

/// <summary>skopeo, the containers/image client: copies between OCI layouts and registries and reads raw manifests.</summary>
public static class Skopeo
{
    public static Task<ToolResult> RunAsync(IEnumerable<string> arguments, CancellationToken cancellationToken = default) =>
        Tool.RunAsync("skopeo", arguments, cancellationToken: cancellationToken);

    /// <summary>Copies an OCI layout image into <paramref name="registry"/> as <c>HOST/REPOSITORY</c> (plain HTTP or trusted TLS).</summary>
    public static Task<ToolResult> PushAsync(TestImage image, RegistryProcess registry, string repositoryAndTag, IEnumerable<string>? extraArguments = null,
        CancellationToken cancellationToken = default) =>
        RunAsync(["copy", "--quiet", .. DestinationTls(registry), .. extraArguments ?? [], image.SourceReference, $"docker://{registry.Host}/{repositoryAndTag}"],
            cancellationToken);

    /// <summary>
    /// The manifest exactly as the registry serves it (<c>skopeo inspect --raw</c>). Manifests are UTF-8
    /// JSON, so decoding stdout and encoding it again gives back the same bytes.
    /// </summary>
    public static async Task<byte[]> RawManifestAsync(RegistryProcess registry, string repositoryAndTag, IEnumerable<string>? extraArguments = null,
        CancellationToken cancellationToken = default)
    {
        var inspect = await RunAsync(["inspect", "--raw", .. Tls(registry), .. extraArguments ?? [], $"docker://{registry.Host}/{repositoryAndTag}"],
            cancellationToken);
        return Encoding.UTF8.GetBytes(inspect.EnsureSuccess().Stdout);
    }

    /// <summary>Plain HTTP needs verification off; a TLS registry is trusted through its CA folder instead.</summary>
    public static IEnumerable<string> DestinationTls(RegistryProcess registry) =>
        registry.UsesTls ? ["--dest-cert-dir", registry.CertificateDirectory] : ["--dest-tls-verify=false"];

    public static IEnumerable<string> SourceTls(RegistryProcess registry) =>
        registry.UsesTls ? ["--src-cert-dir", registry.CertificateDirectory] : ["--src-tls-verify=false"];

    /// <summary>For commands with a single registry side (inspect).</summary>
    public static IEnumerable<string> Tls(RegistryProcess registry) =>
        registry.UsesTls ? ["--cert-dir", registry.CertificateDirectory] : ["--tls-verify=false"];
}
