using Airlock.GoCompat;
using Airlock.Node;
using Airlock.Node.ContainerdTemplates;

namespace Airlock.Tests.Node.ContainerdTemplates;

/// <summary>The fixed data of the template tests: K3s's templates.ContainerdConfig as Oracle/main.go builds it.</summary>
internal static class TemplateCases
{
    public const string RegistriesYaml = """
        mirrors:
          docker.io:
            endpoint:
              - "https://mirror.example.com"
              - "https://registry-1.docker.io"
            rewrite:
              "^library/(.*)": "mirrored/$1"
          registry.example.com:
            endpoint:
              - "https://registry.example.com:5000"
        configs:
          registry.example.com:
            auth:
              username: user
              password: "p{{x}}<&>"
            tls:
              ca_file: /etc/ssl/ca.pem
          insecure.example.com:
            tls:
              insecure_skip_verify: true
        """;

    public static readonly string VectorsDir = Locate();

    public static RegistriesFile Registries => RegistriesFileReader.Parse(RegistriesYaml, "/etc/airlock/registries.yaml").File;

    public static ContainerdConfigOptions Options(ContainerdConfigSchema schema = ContainerdConfigSchema.V2, string dataDir = "/var/lib/airlock") => new()
    {
        DataDir = dataDir,
        Schema = schema,
        SandboxImage = "registry.example.com/pause:3.10",
        SystemdCgroup = true,
        Runtimes = [new ContainerdRuntime("nvidia", "/usr/bin/nvidia-container-runtime")],
        Imports = [Path.Combine(dataDir, "agent", "etc", "containerd", "config.toml.d", "*.toml")],
    };

    public static GoStruct Data(ContainerdConfigOptions? options = null) =>
        ContainerdConfigTemplate.Data(options ?? Options(), Registries, disableDefaultEndpoint: false, nodeName: "node-1");

    private static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Airlock.Tests", "Node", "ContainerdTemplates", "Vectors");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("tests/Airlock.Tests/Node/ContainerdTemplates/Vectors not found above the test binaries");
    }

    /// <summary>"=== name" sections of a vectors file, each with its body (without the final newline).</summary>
    public static IReadOnlyList<(string Name, string Body)> Sections(string file)
    {
        var text = File.ReadAllText(Path.Combine(VectorsDir, file)).ReplaceLineEndings("\n");
        return ("\n" + text).Split("\n=== ").Skip(1).Select(section =>
        {
            var newline = section.IndexOf('\n', StringComparison.Ordinal);
            var body = newline < 0 ? string.Empty : section[(newline + 1)..];
            return (newline < 0 ? section : section[..newline], body.EndsWith('\n') ? body[..^1] : body);
        }).ToList();
    }
}
