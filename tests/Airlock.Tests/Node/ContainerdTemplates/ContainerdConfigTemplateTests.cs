using Airlock.GoCompat;
using Airlock.Node;
using Airlock.Node.ContainerdTemplates;

namespace Airlock.Tests.Node.ContainerdTemplates;

/// <summary>
/// config.toml.tmpl as K3s users write it: golden outputs for templates in the shapes K3s's docs show (base plus
/// an appended runtime, a whole replacement that changes the snapshotter, a default runtime), which template
/// file wins for which containerd, and the wiring into rendering (plan, dry-run, diff, errors).
/// </summary>
public sealed class ContainerdConfigTemplateTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("al-tmpl-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Examples()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(TemplateCases.VectorsDir, "examples")).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(dir));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void Example_template_renders_the_golden_config_and_it_is_valid_toml(string name)
    {
        var dir = Path.Combine(TemplateCases.VectorsDir, "examples", name);
        var path = Directory.GetFiles(dir, "*.tmpl").Single();
        var schema = Path.GetFileName(path) == ContainerdConfigTemplate.V3FileName ? ContainerdConfigSchema.V3 : ContainerdConfigSchema.V2;
        var options = TemplateCases.Options(schema);
        var template = new ContainerdTemplateFile(path, File.ReadAllText(path), schema);

        var rendered = ContainerdConfigTemplate.Render(template, ContainerdConfigWriter.Write(options, TemplateCases.Registries), TemplateCases.Data(options));

        var expectedPath = Path.Combine(dir, "expected.toml");
        if (Environment.GetEnvironmentVariable("AIRLOCK_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(expectedPath, rendered);
        }

        Assert.Equal(File.ReadAllText(expectedPath), rendered);
        SeedExamplesTests.AssertValidToml(rendered);
    }

    private ContainerdConfigOptions OnDisk(ContainerdConfigSchema schema) => TemplateCases.Options(schema, Path.Combine(_dir, "data"));

    private void WriteTemplate(ContainerdConfigOptions options, string name, string text)
    {
        Directory.CreateDirectory(options.ContainerdDir);
        File.WriteAllText(Path.Combine(options.ContainerdDir, name), text);
    }

    [Fact]
    public async Task Without_a_template_the_generated_config_is_used()
    {
        var options = OnDisk(ContainerdConfigSchema.V2);
        var rendered = await ContainerdConfigTemplate.RenderAsync(options, TemplateCases.Registries, false, CancellationToken.None);
        Assert.Equal(ContainerdConfigWriter.Write(options, TemplateCases.Registries), rendered);
    }

    [Fact]
    public async Task Containerd_2_prefers_config_v3_toml_tmpl_and_falls_back_to_config_toml_tmpl_with_a_version_2_base()
    {
        var options = OnDisk(ContainerdConfigSchema.V3);
        WriteTemplate(options, ContainerdConfigTemplate.V2FileName, "{{ template \"base\" . }}# from v2 template\n");

        var fromV2 = await ContainerdConfigTemplate.RenderAsync(options, TemplateCases.Registries, false, CancellationToken.None);
        Assert.Contains("version = 2\n", fromV2, StringComparison.Ordinal);
        Assert.Contains("[plugins.\"io.containerd.grpc.v1.cri\".registry]", fromV2, StringComparison.Ordinal);
        Assert.EndsWith("# from v2 template\n", fromV2, StringComparison.Ordinal);

        WriteTemplate(options, ContainerdConfigTemplate.V3FileName, "{{ template \"base\" . }}# from v3 template\n");
        var fromV3 = await ContainerdConfigTemplate.RenderAsync(options, TemplateCases.Registries, false, CancellationToken.None);
        Assert.Contains("version = 3\n", fromV3, StringComparison.Ordinal);
        Assert.EndsWith("# from v3 template\n", fromV3, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Containerd_1_ignores_config_v3_toml_tmpl_which_it_could_not_read()
    {
        var options = OnDisk(ContainerdConfigSchema.V2);
        WriteTemplate(options, ContainerdConfigTemplate.V3FileName, "version = 3\n");

        var rendered = await ContainerdConfigTemplate.RenderAsync(options, TemplateCases.Registries, false, CancellationToken.None);
        Assert.Equal(ContainerdConfigWriter.Write(options, TemplateCases.Registries), rendered);
    }

    [Fact]
    public async Task Base_is_inserted_verbatim_so_braces_in_credentials_are_not_actions()
    {
        var options = OnDisk(ContainerdConfigSchema.V2);
        WriteTemplate(options, ContainerdConfigTemplate.V2FileName, "{{ template \"base\" . }}");

        var rendered = await ContainerdConfigTemplate.RenderAsync(options, TemplateCases.Registries, false, CancellationToken.None);
        Assert.Contains("password = \"p{{x}}<&>\"", rendered, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Template_data_carries_the_disable_default_endpoint_flag_and_registries()
    {
        var options = OnDisk(ContainerdConfigSchema.V2);
        WriteTemplate(options, ContainerdConfigTemplate.V2FileName,
            "{{ .NoDefaultEndpoint }} {{ range $k, $v := .PrivateRegistryConfig.Mirrors }}{{ $k }} {{ end }}{{ .NodeConfig.Containerd.Registry }}");

        var rendered = await ContainerdConfigTemplate.RenderAsync(options, TemplateCases.Registries, true, CancellationToken.None);
        Assert.Equal($"true docker.io registry.example.com {options.CertsDir}", rendered);
    }

    [Fact]
    public async Task Plan_renders_the_template_into_config_toml_and_applies_it()
    {
        var options = OnDisk(ContainerdConfigSchema.V2);
        WriteTemplate(options, ContainerdConfigTemplate.V2FileName, "{{ template \"base\" . }}\n[plugins.\"io.containerd.gc.v1.scheduler\"]\n  deletion_threshold = 3\n");

        var plan = await ContainerdRenderer.PlanAsync(TemplateCases.Registries, options, false, CancellationToken.None);
        await ContainerdRenderer.ApplyAsync(plan, CancellationToken.None);

        var config = await File.ReadAllTextAsync(Path.Combine(options.ContainerdDir, "config.toml"));
        Assert.StartsWith("# File generated by airlock. DO NOT EDIT.\nversion = 2\n", config, StringComparison.Ordinal);
        Assert.EndsWith("\n[plugins.\"io.containerd.gc.v1.scheduler\"]\n  deletion_threshold = 3\n", config, StringComparison.Ordinal);
        Assert.False((await ContainerdRenderer.PlanAsync(TemplateCases.Registries, options, false, CancellationToken.None)).HasChanges);
    }

    [Fact]
    public async Task A_broken_template_fails_the_plan_with_file_line_and_column()
    {
        var options = OnDisk(ContainerdConfigSchema.V2);
        WriteTemplate(options, ContainerdConfigTemplate.V2FileName, "{{ template \"base\" . }}\n\n[x]\n  y = {{ foo .Program }}\n");

        var ex = await Assert.ThrowsAsync<GoTemplateException>(() => ContainerdRenderer.PlanAsync(TemplateCases.Registries, options, false, CancellationToken.None));

        Assert.Equal("config.toml.tmpl:4:10: function \"foo\" not defined", ex.Message);
    }

    [Theory]
    [InlineData("{{ .NodeConfig.Nope }}", "config.toml.tmpl:1:4: executing \"config.toml.tmpl\" at <.NodeConfig.Nope>: can't evaluate field Nope in type *config.Node")]
    [InlineData("a\n{{ if .SystemdCgroup }}", "config.toml.tmpl:2:24: unexpected EOF")]
    [InlineData("x {{ .Program", "config.toml.tmpl:1:3: unclosed action")]
    [InlineData("{{ range $k, $v := .ExtraRuntimes }}{{ $v.Nope }}{{ end }}", "config.toml.tmpl:1:40: executing \"config.toml.tmpl\" at <$v.Nope>: can't evaluate field Nope in type templates.ContainerdRuntimeConfig")]
    [InlineData("\n\n   {{ printf }}", "config.toml.tmpl:3:7: executing \"config.toml.tmpl\" at <printf>: wrong number of args for printf: want at least 1 got 0")]
    [InlineData("{{ template \"base\" . }}{{ end }}", "config.toml.tmpl:1:27: unexpected {{end}}")]
    public void Errors_name_the_file_line_and_column(string text, string message)
    {
        var template = new ContainerdTemplateFile("/x/config.toml.tmpl", text, ContainerdConfigSchema.V2);

        var ex = Assert.Throws<GoTemplateException>(() => ContainerdConfigTemplate.Render(template, "BASE\n", TemplateCases.Data()));

        Assert.Equal(message, ex.Message);
    }
}
