using System.Collections;
using System.Text.Json;
using Airlock.Cli.Commands;
using Airlock.Cli.Hosting;
using Airlock.Node.Preflight;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Airlock.Tests.Cli;

/// <summary>
/// <c>--output yaml</c> is the JSON document written as YAML (no reflection serializer: the binary is Native AOT),
/// so a YAML reader must get back the same keys and values, with strings that look like other types kept strings.
/// </summary>
public sealed class DataOutputTests
{
    [Fact]
    public void Yaml_reads_back_as_the_json_document_with_look_alike_strings_quoted()
    {
        IReadOnlyList<CliInventoryRow> rows =
        [
            new(null, "sha256:abc", "application/vnd.oci.image.index.v1+json", ["linux/amd64", "linux/arm64"], 1234),
            new("true", "1.0", "no", [], 0),
        ];
        var output = new StringWriter();
        DataOutput.Write(output, "yaml", rows, CliJson.Default.IReadOnlyListCliInventoryRow);

        var yaml = new YamlStream();
        yaml.Load(new StringReader(output.ToString()));
        var sequence = Assert.IsType<YamlSequenceNode>(yaml.Documents.Single().RootNode);
        var first = Assert.IsType<YamlMappingNode>(sequence[0]);
        Assert.Equal(["name", "digest", "mediaType", "platforms", "size"], first.Children.Keys.Select(k => ((YamlScalarNode)k).Value));
        Assert.Equal("null", Scalar(first, "name").Value);
        Assert.Equal(ScalarStyle.Plain, Scalar(first, "name").Style);
        Assert.Equal("1234", Scalar(first, "size").Value);
        Assert.Equal(["linux/amd64", "linux/arm64"], ((YamlSequenceNode)first.Children["platforms"]).Select(n => ((YamlScalarNode)n).Value));

        var second = Assert.IsType<YamlMappingNode>(sequence[1]);
        foreach (var (key, text) in new[] { ("name", "true"), ("digest", "1.0"), ("mediaType", "no") })
        {
            Assert.Equal(text, Scalar(second, key).Value);
            Assert.Equal(ScalarStyle.DoubleQuoted, Scalar(second, key).Style);
        }

        Assert.Empty((YamlSequenceNode)second.Children["platforms"]);
    }

    [Fact]
    public void Check_yaml_has_the_keys_and_values_of_check_json()
    {
        IReadOnlyList<CheckResult> results = [new("clock", CheckStatus.Warn, "off by 3 s", "run chronyd"), new("runc", CheckStatus.Pass, "runc 1.1")];
        var json = new StringWriter();
        var yaml = new StringWriter();
        DataOutput.Write(json, "json", results, CliJson.Default.IReadOnlyListCheckResult);
        DataOutput.Write(yaml, "yaml", results, CliJson.Default.IReadOnlyListCheckResult);

        Assert.Equal("warn", JsonDocument.Parse(json.ToString()).RootElement[0].GetProperty("status").GetString());
        Assert.Equal(
            "- name: clock\n  status: warn\n  message: off by 3 s\n  fix: run chronyd\n- name: runc\n  status: pass\n  message: runc 1.1\n",
            yaml.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task Images_list_prints_names_as_a_yaml_sequence()
    {
        var manifest = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(manifest, "kind: Pod\nspec: { containers: [{ image: b:1 }, { image: a:1 }] }\n");
            var output = new StringWriter();
            var error = new StringWriter();
            var code = await AirlockCli.RunAsync(["images", "list", manifest, "--output", "yaml"], new Hashtable(), output, error);
            Assert.True(code == 0, error.ToString());
            Assert.Equal("- a:1\n- b:1\n", output.ToString().ReplaceLineEndings("\n"));
        }
        finally
        {
            File.Delete(manifest);
        }
    }

    private static YamlScalarNode Scalar(YamlMappingNode mapping, string key) => (YamlScalarNode)mapping.Children[key];
}
