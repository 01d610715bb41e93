using Airlock.Configuration;
using YamlDotNet.RepresentationModel;

namespace Airlock.Tests.Configuration;

public sealed class YamlWalkerTests
{
    [Fact]
    public void Every_problem_of_a_walk_is_kept_with_its_line_and_column()
    {
        var yaml = new YamlWalker();
        var root = Assert.Single(yaml.Load(new StringReader("""
            endpoints: [a]
            rewrite: x
            ? [seven]
            : 7
            """))!);

        var entries = yaml.Entries(root, "mirrors.\"docker.io\"", "not a map", ["endpoint", "rewrite"],
            (key, hint) => $"unknown key {key}, hint {hint}").ToList();
        var items = yaml.Items(entries.Single(e => e.Key == "rewrite").Value, "rewrite must be a list");

        Assert.Equal("rewrite", Assert.Single(entries).Key);
        Assert.Empty(items);
        Assert.Equal(
            [
                new YamlProblem(1, 1, "unknown key endpoints, hint endpoint"),
                new YamlProblem(3, 3, "keys of mirrors.\"docker.io\" must be strings"),
                new YamlProblem(2, 10, "rewrite must be a list"),
            ],
            yaml.Problems);
        Assert.True(yaml.HasErrors);
    }

    [Fact]
    public void Unknown_keys_are_warnings_where_the_reader_ignores_them()
    {
        var yaml = new YamlWalker();
        var root = Assert.Single(yaml.Load(new StringReader("endpoint: [a]\ntoken: x\n"))!);

        var entries = yaml.Entries(root, "auth", "not a map", ["endpoint"], (key, _) => $"{key} is ignored", unknownIsWarning: true).ToList();

        Assert.Equal("endpoint", Assert.Single(entries).Key);
        Assert.Equal(new YamlProblem(2, 1, "token is ignored", IsWarning: true), Assert.Single(yaml.Problems));
        Assert.False(yaml.HasErrors);
    }

    [Fact]
    public void Text_that_is_not_yaml_is_one_problem_at_the_place_it_breaks()
    {
        var yaml = new YamlWalker();

        var documents = yaml.Load(new StringReader("access:\n  - users: [alice\n"));

        Assert.Null(documents);
        var problem = Assert.Single(yaml.Problems);
        Assert.StartsWith("not valid YAML: ", problem.Message, StringComparison.Ordinal);
        Assert.Equal(3, problem.Line);
        Assert.ThrowsAny<YamlDotNet.Core.YamlException>(() => YamlWalker.LoadDocuments(new StringReader("access:\n  - users: [alice\n")));
    }

    [Fact]
    public void Text_the_yaml_scanner_gives_up_on_without_a_position_is_still_one_problem_not_an_exception()
    {
        // YamlDotNet's scanner throws InvalidOperationException on this (an unclosed flow list, then another key).
        const string Broken = "mirrors: [a\nconfigs: {}\n";
        var yaml = new YamlWalker();

        var documents = yaml.Load(new StringReader(Broken));

        Assert.Null(documents);
        var problem = Assert.Single(yaml.Problems);
        Assert.StartsWith("not valid YAML: ", problem.Message, StringComparison.Ordinal);
        Assert.Contains("unclosed", problem.Message, StringComparison.Ordinal);
        Assert.ThrowsAny<YamlDotNet.Core.YamlException>(() => YamlWalker.LoadDocuments(new StringReader(Broken)));
    }

    [Theory]
    [InlineData("a:", true)]
    [InlineData("a: ~", true)]
    [InlineData("a: null", true)]
    [InlineData("a: NULL", true)]
    [InlineData("a: \"null\"", false)]
    [InlineData("a: ''", false)]
    [InlineData("a: x", false)]
    public void Nulls_are_read_as_yaml_1_1_reads_them(string text, bool isNull)
    {
        var map = (YamlMappingNode)Assert.Single(YamlWalker.LoadDocuments(new StringReader(text)));

        Assert.Equal(isNull, YamlWalker.IsNull(map.Children[new YamlScalarNode("a")]));
    }

    [Fact]
    public void A_null_is_an_empty_map_and_an_empty_list_without_a_problem()
    {
        var yaml = new YamlWalker();
        var map = (YamlMappingNode)Assert.Single(yaml.Load(new StringReader("m:\nl: ~\n"))!);

        Assert.Empty(yaml.Pairs(map.Children[new YamlScalarNode("m")], "m", "m must be a map"));
        Assert.Empty(yaml.Items(map.Children[new YamlScalarNode("l")], "l must be a list"));
        Assert.Empty(yaml.Problems);
    }

    [Theory]
    [InlineData("Registry", "registry")]
    [InlineData("insecure_skip_verfy", "insecure_skip_verify")]
    [InlineData("endpoints", "endpoint")]
    [InlineData("paralel", "parallel")]
    [InlineData("ca", "ca_file")]
    [InlineData("colour", null)]
    public void A_misspelt_key_is_matched_to_the_known_key_it_resembles(string key, string? expected)
    {
        Assert.Equal(expected, YamlWalker.Suggest(key, ["registry", "insecure_skip_verify", "endpoint", "parallel", "ca_file"]));
    }

    [Fact]
    public void A_scalar_where_a_list_or_map_stands_says_which()
    {
        var yaml = new YamlWalker();
        var map = (YamlMappingNode)Assert.Single(yaml.Load(new StringReader("a: [x]\nb: {x: y}\nc: ~\nd: v\n"))!);
        string? Value(string key) => yaml.Scalar(map.Children[new YamlScalarNode(key)], key);

        Assert.Null(Value("a"));
        Assert.Null(Value("b"));
        Assert.Equal(string.Empty, Value("c"));
        Assert.Equal("v", Value("d"));
        Assert.Equal(["a must be a single value, not a list", "b must be a single value, not a map"], yaml.Problems.Select(p => p.Message));
    }

    [Fact]
    public void A_flat_settings_file_gives_values_and_lists_and_reports_other_shapes()
    {
        var yaml = new YamlWalker();
        var root = Assert.Single(yaml.Load(new StringReader("""
            data-dir: /var/lib/airlock
            node-label: [a=b, c=d]
            nested: {x: y}
            """))!);

        var settings = yaml.FlatSettings(root, "config.yaml");

        Assert.Equal(["data-dir", "node-label", "nested"], settings.Select(s => s.Key));
        Assert.Equal(["a=b", "c=d"], settings[1].Values);
        Assert.Equal(2, settings[1].Line);
        Assert.Empty(settings[2].Values);
        Assert.Equal(new YamlProblem(3, 1, "value of \"nested\" must be a scalar or a list of scalars"), Assert.Single(yaml.Problems));
    }
}
