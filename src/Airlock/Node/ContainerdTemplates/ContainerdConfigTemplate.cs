using Airlock.GoCompat;

namespace Airlock.Node.ContainerdTemplates;

/// <summary>A user template found beside config.toml, and the schema its <c>"base"</c> is rendered in.</summary>
public sealed record ContainerdTemplateFile(string Path, string Text, ContainerdConfigSchema Schema);

/// <summary>
/// K3s's <c>config.toml.tmpl</c>: a Go template beside the generated config.toml that replaces it, with
/// <c>{{ template "base" . }}</c> for the generated file and K3s's template data (<c>templates.ContainerdConfig</c>:
/// <c>.NodeConfig</c>, <c>.PrivateRegistryConfig</c>, <c>.SystemdCgroup</c>, …). As K3s does for containerd 2,
/// <c>config-v3.toml.tmpl</c> is preferred and a <c>config.toml.tmpl</c> alone renders a version-2 config
/// (containerd 2 still reads it); containerd 1.x reads only version 2, so there only <c>config.toml.tmpl</c> counts.
/// </summary>
public static class ContainerdConfigTemplate
{
    public const string V2FileName = "config.toml.tmpl";
    public const string V3FileName = "config-v3.toml.tmpl";

    /// <summary>
    /// config.toml's content: the generated file, or the user template rendered over it when one exists.
    /// A template that cannot be parsed or executed throws <see cref="GoTemplateException"/>.
    /// </summary>
    public static async Task<string> RenderAsync(ContainerdConfigOptions options, RegistriesFile registries, bool disableDefaultEndpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (await FindAsync(options, cancellationToken).ConfigureAwait(false) is not { } template)
        {
            return ContainerdConfigWriter.Write(options, registries);
        }

        var baseOptions = options with { Schema = template.Schema };
        return Render(template, ContainerdConfigWriter.Write(baseOptions, registries), Data(baseOptions, registries, disableDefaultEndpoint, Environment.MachineName));
    }

    /// <summary>The template that applies to <paramref name="options"/>' schema, or null when there is none.</summary>
    public static async Task<ContainerdTemplateFile?> FindAsync(ContainerdConfigOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var candidates = options.Schema == ContainerdConfigSchema.V3
            ? new[] { (V3FileName, ContainerdConfigSchema.V3), (V2FileName, ContainerdConfigSchema.V2) }
            : [(V2FileName, ContainerdConfigSchema.V2)];
        foreach (var (name, schema) in candidates)
        {
            var path = System.IO.Path.Combine(options.ContainerdDir, name);
            if (File.Exists(path))
            {
                return new ContainerdTemplateFile(path, await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false), schema);
            }
        }

        return null;
    }

    /// <summary>Renders <paramref name="template"/> with <paramref name="baseConfig"/> as its <c>"base"</c> template.</summary>
    internal static string Render(ContainerdTemplateFile template, string baseConfig, object data)
    {
        var parsed = GoTemplate.Parse(System.IO.Path.GetFileName(template.Path), template.Text, K3sTemplateFunctions.All);

        // The generated file is inserted verbatim: a password containing "{{" must not be read as an action.
        parsed.AddLiteral("base", baseConfig);
        return parsed.Execute(data);
    }

    /// <summary>
    /// K3s's <c>templates.ContainerdConfig</c> filled from what Airlock renders. Fields of K3s's <c>config.Node</c>
    /// that have no meaning for a stock containerd node are left out, so a template using them fails with
    /// "can't evaluate field" rather than rendering something wrong.
    /// </summary>
    internal static GoStruct Data(ContainerdConfigOptions options, RegistriesFile registries, bool disableDefaultEndpoint, string nodeName)
    {
        var containerd = new GoStruct("config.Containerd",
        [
            new("Address", options.GrpcAddress ?? "/run/containerd/containerd.sock"),
            new("Log", string.Empty),
            new("Root", options.Root ?? "/var/lib/containerd"),
            new("State", options.State ?? "/run/containerd"),
            new("Config", System.IO.Path.Combine(options.ContainerdDir, ContainerdRenderer.ConfigTomlName)),
            new("Opt", "/opt/containerd"),
            new("Template", options.ContainerdDir),
            new("Registry", options.CertsDir),
            new("SELinux", false),
            new("Debug", false),
        ]);
        var agent = new GoStruct("config.Agent",
        [
            new("NodeName", nodeName),
            new("PauseImage", options.SandboxImage ?? string.Empty),
            new("Snapshotter", options.Snapshotter),
            new("CNIBinDir", "/opt/cni/bin"),
            new("CNIConfDir", "/etc/cni/net.d"),
            new("ImageServiceSocket", string.Empty),
            new("PrivateRegistry", registries.Source),
            new("Rootless", false),
            new("Systemd", options.SystemdCgroup),
        ]);
        var node = new GoStruct("config.Node",
        [
            new("Docker", false),
            new("ContainerRuntimeEndpoint", string.Empty),
            new("DefaultRuntime", string.Empty),
            new("NoFlannel", false),
            new("SELinux", false),
            new("AgentConfig", agent),
            new("Containerd", containerd),
        ]);
        var runtimes = new GoMap(
            "map[string]templates.ContainerdRuntimeConfig",
            options.Runtimes.Select(r => new KeyValuePair<string, object?>(r.Name, RuntimeConfig("io.containerd.runc.v2", r.BinaryName))),
            RuntimeConfig(string.Empty, string.Empty));
        return new GoStruct("templates.ContainerdConfig",
        [
            new("NodeConfig", GoPointer.To(node)),
            new("DisableCgroup", false),
            new("SystemdCgroup", options.SystemdCgroup),
            new("IsRunningInUserNS", false),
            new("EnableUnprivileged", true),
            new("NoDefaultEndpoint", disableDefaultEndpoint),
            new("PrivateRegistryConfig", GoPointer.To(Registry(registries))),
            new("ExtraRuntimes", runtimes),
            new("Program", options.Generator),
        ]);
    }

    private static GoStruct RuntimeConfig(string runtimeType, string binaryName) =>
        new("templates.ContainerdRuntimeConfig", [new("RuntimeType", runtimeType), new("BinaryName", binaryName)]);

    // rancher/wharfie's registries.Registry, json keys as in registries.yaml.
    private static GoStruct Registry(RegistriesFile registries)
    {
        var mirrors = new GoMap(
            "map[string]registries.Mirror",
            registries.Mirrors.Count == 0 ? null : registries.Mirrors.Select(m => new KeyValuePair<string, object?>(m.Key, Mirror(m.Endpoints.Select(e => e.Address), m.Rewrites))),
            Mirror([], []));
        var configs = new GoMap(
            "map[string]registries.RegistryConfig",
            registries.Configs.Count == 0 ? null : registries.Configs.Select(c => new KeyValuePair<string, object?>(c.Key, Config(c.Auth, c.Tls))),
            Config(null, null));
        return new GoStruct("registries.Registry", [new("Mirrors", mirrors, "mirrors"), new("Configs", configs, "configs")]);
    }

    private static GoStruct Mirror(IEnumerable<string> endpoints, IReadOnlyList<RewriteRule> rewrites)
    {
        var list = endpoints.Select(e => (object?)e).ToList();
        return new GoStruct("registries.Mirror",
        [
            new("Endpoints", new GoSlice("[]string", list.Count == 0 ? null : list), "endpoint"),
            new("Rewrites", new GoMap("map[string]string", rewrites.Count == 0 ? null : rewrites.Select(r => new KeyValuePair<string, object?>(r.Pattern, r.Replacement)), string.Empty), "rewrite"),
        ]);
    }

    private static readonly string[] AuthFields = ["Username", "Password", "Auth", "IdentityToken"];
    private static readonly string[] TlsFields = ["CAFile", "CertFile", "KeyFile", "InsecureSkipVerify"];

    private static GoStruct Config(RegistryAuth? auth, RegistryTls? tls)
    {
        var authValue = auth is null
            ? GoPointer.Nil("registries.AuthConfig", AuthFields)
            : GoPointer.To(new GoStruct("registries.AuthConfig",
            [
                new("Username", auth.Username ?? string.Empty, "username"),
                new("Password", auth.Password ?? string.Empty, "password"),
                new("Auth", auth.Auth ?? string.Empty, "auth"),
                new("IdentityToken", auth.IdentityToken ?? string.Empty, "identitytoken"),
            ]));
        var tlsValue = tls is null
            ? GoPointer.Nil("registries.TLSConfig", TlsFields)
            : GoPointer.To(new GoStruct("registries.TLSConfig",
            [
                new("CAFile", tls.CaFile?.Path ?? string.Empty, "ca_file"),
                new("CertFile", tls.CertFile?.Path ?? string.Empty, "cert_file"),
                new("KeyFile", tls.KeyFile?.Path ?? string.Empty, "key_file"),
                new("InsecureSkipVerify", tls.InsecureSkipVerify, "insecure_skip_verify"),
            ]));
        return new GoStruct("registries.RegistryConfig", [new("Auth", authValue, "auth"), new("TLS", tlsValue, "tls")]);
    }
}
