using Airlock.Node;

namespace Airlock.Tests.Node;

/// <summary>Every K3s vector: the certs.d tree and the config.toml registry section, byte for byte.</summary>
public sealed class K3sVectorTests
{
    public static IEnumerable<object[]> Cases() => K3sVectors.Cases();

    [Fact]
    public void All_vectors_are_found()
    {
        Assert.True(K3sVectors.Cases().Count() >= 23, $"only {K3sVectors.Cases().Count()} cases in {K3sVectors.Directory}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Hosts_toml_files_match_K3s_byte_for_byte(string name)
    {
        var endpoints = Resolve(name);

        Assert.Equal(K3sVectors.HostsList(name), endpoints.Hosts.Select(h => h.Directory).ToList());
        foreach (var host in endpoints.Hosts)
        {
            var expected = File.ReadAllText(Path.Combine(K3sVectors.CaseDir(name), "expected", "certs.d", host.Directory, "hosts.toml"));
            Assert.Equal(expected, HostsTomlWriter.Write(host, "k3s"));
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Config_toml_registry_section_matches_K3s_for_v3_and_v2(string name)
    {
        var file = Read(name);
        var certsDir = K3sVectors.K3sDataDir + "/agent/etc/containerd/certs.d";
        foreach (var (schema, fileName) in new[] { (ContainerdConfigSchema.V3, "config-registry.toml"), (ContainerdConfigSchema.V2, "config-registry-v2.toml") })
        {
            var path = Path.Combine(K3sVectors.CaseDir(name), "expected", fileName);
            var section = ContainerdConfigWriter.RegistrySection(certsDir, file, schema);
            var full = ContainerdConfigWriter.Write(new ContainerdConfigOptions { DataDir = K3sVectors.K3sDataDir, Schema = schema }, file);
            if (File.Exists(path))
            {
                var expected = File.ReadAllText(path);
                Assert.Equal(expected, section);
                Assert.EndsWith("\n\n" + expected, full, StringComparison.Ordinal);
            }
            else
            {
                // No configs: the section is only the pointer to certs.d.
                Assert.Empty(file.Configs);
                Assert.Equal(2, section.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
                Assert.EndsWith("\n\n" + section, full, StringComparison.Ordinal);
            }
        }
    }

    internal static RegistriesFile Read(string name)
    {
        var path = Path.Combine(K3sVectors.CaseDir(name), "registries.yaml");
        var (file, problems) = RegistriesFileReader.Parse(File.ReadAllText(path), path);
        Assert.DoesNotContain(problems, p => p.Message.StartsWith("not valid YAML", StringComparison.Ordinal));
        return file;
    }

    private static RegistryEndpoints Resolve(string name) => new(Read(name), K3sVectors.DisableDefault(name));
}
