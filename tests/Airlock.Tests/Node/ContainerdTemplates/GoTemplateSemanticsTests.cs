using System.Text.RegularExpressions;
using Airlock.GoCompat;
using Airlock.Node.ContainerdTemplates;

namespace Airlock.Tests.Node.ContainerdTemplates;

/// <summary>
/// Every case in Vectors/semantics.txt renders as Go's own text/template renders it (Vectors/semantics.expected,
/// written by Oracle/main.go with Go 1.19 and K3s's template functions over the same data): output byte for
/// byte, or the same error on the same line. Error text is compared without Go's "at &lt;…&gt;" node context.
/// </summary>
public sealed partial class GoTemplateSemanticsTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in TemplateCases.Sections("semantics.txt"))
        {
            data.Add(name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Renders_as_go_text_template_does(string name)
    {
        var body = TemplateCases.Sections("semantics.txt").Single(c => c.Name == name).Body;
        var expected = TemplateCases.Sections("semantics.expected").Single(c => c.Name == name).Body;

        string actual;
        try
        {
            var template = GoTemplate.Parse("t.tmpl", body, K3sTemplateFunctions.All);
            template.AddLiteral("base", "BASE\n");
            actual = "OK " + GoQuote.Quote(template.Execute(TemplateCases.Data()));
        }
        catch (GoTemplateException ex)
        {
            Assert.Equal("t.tmpl", ex.File);
            Assert.True(ex.Column >= 1, ex.Message);
            actual = $"ERROR {ex.Line} {WithoutNodeContext(ex.Problem)}";
            expected = expected.StartsWith("ERROR ", StringComparison.Ordinal) ? "ERROR " + WithoutNodeContext(expected[6..]) : expected;
            if (expected.StartsWith("ERROR ", StringComparison.Ordinal))
            {
                var space = expected.IndexOf(' ', 6);
                expected = expected[..space] + " " + WithoutNodeContext(expected[(space + 1)..]);
            }
        }

        Assert.Equal(expected, actual);
    }

    private static string WithoutNodeContext(string problem) => NodeContext().Replace(problem, "executing \"$1\": ");

    [GeneratedRegex("^executing \"([^\"]*)\" at <.*?>: ")]
    private static partial Regex NodeContext();
}
