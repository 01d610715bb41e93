using System.Collections;
using Airlock.Cli.Hosting;

namespace Airlock.Tests.Cli;

public sealed class ConfigSourcesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("airlock-cfg-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Unknown_flag_exits_with_usage_code_2_and_names_the_flag()
    {
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(["version", "--no-such-flag"], new Hashtable(), new StringWriter(), error);
        Assert.Equal(2, code);
        Assert.Contains("--no-such-flag", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_yaml_in_the_config_file_is_reported_with_its_line()
    {
        var path = Path.Combine(_dir, "config.yaml");
        await File.WriteAllTextAsync(path, "listen: [unclosed\n");
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(["version", "--config", path], new Hashtable(), new StringWriter(), error);
        Assert.Equal(2, code);
        Assert.Contains(path + ":", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_config_file_the_yaml_scanner_gives_up_on_is_a_usage_error_naming_it_not_a_crash()
    {
        // YamlDotNet throws InvalidOperationException (not YamlException) here: an unclosed flow list followed by a key.
        var path = Path.Combine(_dir, "config.yaml");
        await File.WriteAllTextAsync(path, "tls-san: [a\nlisten: 127.0.0.1:6000\n");
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(["version", "--config", path], new Hashtable(), new StringWriter(), error);
        Assert.Equal(2, code);
        Assert.Contains(path + ":", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("unclosed", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Config_file_lists_become_repeated_values()
    {
        var path = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(path, "listen: 127.0.0.1:6000\nproxy:\n  - docker.io=http://a\n  - quay.io=http://b\n");
        var values = ConfigSources.LoadConfigFile(path, ValueSource.Environment("AIRLOCK_CONFIG"));
        Assert.Equal(["127.0.0.1:6000"], values["listen"]);
        Assert.Equal(["docker.io=http://a", "quay.io=http://b"], values["proxy"]);
    }

    [Fact]
    public void A_missing_config_file_given_explicitly_is_an_error()
    {
        Assert.Throws<MissingPathException>(() => ConfigSources.LoadConfigFile(Path.Combine(_dir, "nope.yaml"), ValueSource.Environment("AIRLOCK_CONFIG")));
    }
}
