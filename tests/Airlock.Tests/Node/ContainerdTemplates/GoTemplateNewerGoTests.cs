using Airlock.GoCompat;
using Airlock.Node.ContainerdTemplates;

namespace Airlock.Tests.Node.ContainerdTemplates;

/// <summary>
/// Language added after Go 1.19 (the oracle's version) that templates written for current K3s may use:
/// <c>{{else with}}</c> (Go 1.23) and <c>range</c> over an integer (Go 1.22); plus the engine's own limits.
/// </summary>
public sealed class GoTemplateNewerGoTests
{
    private static string Render(string text) => GoTemplate.Parse("t.tmpl", text, K3sTemplateFunctions.All).Execute(TemplateCases.Data());

    [Theory]
    [InlineData("{{ with .NodeConfig.DefaultRuntime }}a{{ else with .NodeConfig.AgentConfig.Snapshotter }}{{ . }}{{ else }}c{{ end }}", "overlayfs")]
    [InlineData("{{ with .NodeConfig.DefaultRuntime }}a{{ else with .NodeConfig.AgentConfig.ImageServiceSocket }}b{{ else }}c{{ end }}", "c")]
    [InlineData("{{ range 3 }}{{ . }},{{ end }}", "0,1,2,")]
    [InlineData("{{ range $i := 2 }}[{{ $i }}]{{ end }}{{ range 0 }}x{{ else }}none{{ end }}", "[0][1]none")]
    public void Renders(string text, string expected) => Assert.Equal(expected, Render(text));

    [Fact]
    public void Unbounded_recursion_stops_with_an_error_instead_of_overflowing_the_stack()
    {
        var ex = Assert.Throws<GoTemplateException>(() => Render("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}"));

        Assert.Contains("exceeded maximum template depth (1000)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Exponential_output_stops_at_the_output_limit()
    {
        var text = "{{ define \"d\" }}{{ if . }}{{ template \"d\" (slice . 1) }}{{ template \"d\" (slice . 1) }}{{ else }}{{ printf \"%65536s\" \"x\" }}{{ end }}{{ end }}"
            + "{{ template \"d\" \"abcdefghijklmnopqrstuvwxyz\" }}";

        var ex = Assert.Throws<GoTemplateException>(() => Render(text));

        Assert.Contains("output is larger than 16 MiB", ex.Message, StringComparison.Ordinal);
    }
}
