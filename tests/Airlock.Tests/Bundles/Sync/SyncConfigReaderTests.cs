using System.Collections;
using Airlock.Bundles.Sync;
using Airlock.Cli.Hosting;

namespace Airlock.Tests.Bundles.Sync;

public sealed class SyncConfigReaderTests
{
    private const string BadFile = """
        version: 2
        defaults:
          paralel: 2
        sync:
        - source: registry.example/app
          target: mirror.example/app
          type: repo
        - source: registry.example/app
          target: '{{ upper "mirror.example" }}/app'
          type: repository
          tags:
            allow: ['v(1']
        """;

    private static SyncConfig Parse(string yaml, Func<string, string?>? environment = null, Func<string, string>? readFile = null) =>
        SyncConfigReader.Parse(yaml, "sync.yaml", environment ?? (_ => null), readFile ?? File.ReadAllText).Config;

    [Fact]
    public void A_bad_file_reports_every_problem_with_its_line()
    {
        var error = Assert.Throws<SyncConfigException>(() => Parse(BadFile));

        var byLine = error.Problems.ToDictionary(p => p.Line);
        Assert.Contains("unsupported version 2", byLine[1].Message, StringComparison.Ordinal);
        Assert.Contains("unknown field \"paralel\"", byLine[3].Message, StringComparison.Ordinal);
        Assert.Contains("type \"repo\" is not one of image, repository, registry", byLine[7].Message, StringComparison.Ordinal);
        Assert.Contains("unsupported template expression \"upper\"", byLine[9].Message, StringComparison.Ordinal);
        Assert.Equal(12, byLine[9].Column); // the "{{" inside the quoted value
        Assert.Contains("pattern \"v(1\" is not a valid regular expression", byLine[12].Message, StringComparison.Ordinal);
        Assert.Equal(5, error.Problems.Count);
        Assert.All(error.Problems, p => Assert.StartsWith($"sync.yaml:{p.Line}:", p.ToString(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cli_refuses_a_bad_file_with_exit_2_and_every_problem_named()
    {
        using var temp = new TempDirectory();
        var path = temp.File("sync.yaml");
        File.WriteAllText(path, BadFile);
        var error = new StringWriter();

        var code = await AirlockCli.RunAsync(["images", "sync", "-f", path], new Hashtable(), new StringWriter(), error);

        Assert.Equal(2, code);
        foreach (var line in new[] { 1, 3, 7, 9, 12 })
        {
            Assert.Contains($"{path}:{line}:", error.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void File_creds_set_tls_and_logins_per_registry_over_the_command_line_settings()
    {
        var config = SyncConfigReader.Parse("""
            creds:
            - { registry: plain.example:5000, tls: disabled, user: u, pass: p }
            - { registry: selfsigned.example, tls: insecure }
            sync:
            - { source: a.example/app:1, target: plain.example:5000/app:1, type: image }
            """, "sync.yaml", _ => null, File.ReadAllText).Config;
        var everywhere = new Airlock.Remote.RegistryCredential("cli", "secret");

        var options = ImageSync.WithFileCreds(config, new Airlock.Remote.RemoteOptions { Credentials = Airlock.Remote.StaticCredentialSource.ForEveryRegistry(everywhere) });

        Assert.Equal(new Uri("http://plain.example:5000/"), options.Endpoints["plain.example:5000"]);
        Assert.True(options.Tls["selfsigned.example"].InsecureSkipVerify);
        Assert.Equal("u", options.Credentials.Find("plain.example:5000")!.Username);
        Assert.Same(everywhere, options.Credentials.Find("a.example"));
    }

    [Fact]
    public void Tag_patterns_match_the_whole_tag_and_not_one_with_a_trailing_newline()
    {
        var filter = Parse("""
            sync:
            - source: registry.example/app
              target: mirror.example/app
              type: repository
              tags:
                allow: ['v1', '1\..*']
                deny: ['1\.0']
            """).Sync[0].Tags;

        Assert.True(filter.Matches("v1"));
        Assert.True(filter.Matches("1.2"));
        Assert.False(filter.Matches("1.0"));
        Assert.False(filter.Matches("v1\n"));
        Assert.False(filter.Matches("1.2\n"));
    }

    [Fact]
    public async Task Cli_once_with_watch_is_a_usage_error()
    {
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(["images", "sync", "-f", "/dev/null", "--once", "--watch"], new Hashtable(), new StringWriter(), error);
        Assert.Equal(2, code);
        Assert.Contains("--once or --watch", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Templates_expand_env_file_literals_and_trim_markers()
    {
        using var temp = new TempDirectory();
        // -}} trims the template text after the action, not the file's own content, as in Go.
        File.WriteAllText(temp.File("host"), "from-file.example");
        var config = Parse("""
            sync:
            - source: '{{ file "HOSTFILE" -}}  /app:{{ "1.0" }}'
              target: 'x  {{- env "MIRROR" }}/app'
              type: image
            """.Replace("HOSTFILE", temp.File("host"), StringComparison.Ordinal), name => name == "MIRROR" ? "mirror.example:5000" : null);

        var entry = Assert.Single(config.Sync);
        Assert.Equal("from-file.example/app:1.0", entry.Source);
        Assert.Equal("xmirror.example:5000/app", entry.Target);
    }

    [Theory]
    [InlineData("'{{ env }}'", "takes one string argument")]
    [InlineData("'{{ env \"A\"'", "unclosed action")]
    [InlineData("'{{ .Sync.Source }}'", "unsupported template expression \".Sync.Source\"")]
    [InlineData("'{{ file \"/nonexistent/airlock\" }}'", "/nonexistent/airlock")]
    public void Unsupported_or_broken_templates_are_refused(string target, string message)
    {
        var error = Assert.Throws<SyncConfigException>(() => Parse($"sync:\n- source: a.example/app:1\n  target: {target}\n  type: image\n"));
        var problem = Assert.Single(error.Problems);
        Assert.Equal(3, problem.Line);
        Assert.Contains(message, problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Defaults_and_fields_that_are_not_acted_on_are_warnings()
    {
        var (config, warnings) = SyncConfigReader.Parse("""
            version: 1
            defaults:
              parallel: 3
              interval: 1h30m
              ratelimit: { min: 100, retry: 15m }
              mediaTypes: [application/vnd.oci.image.manifest.v1+json]
            sync:
            - source: a.example/app
              target: b.example/app
              type: repository
              platforms: [linux/amd64, linux/arm64]
            """, "sync.yaml", _ => null, File.ReadAllText);

        Assert.Equal((3, TimeSpan.FromMinutes(90)), (config.Parallel, config.Interval));
        Assert.Equal(["linux/amd64", "linux/arm64"], Assert.Single(config.Sync).Platforms!.Select(p => p.ToString()));
        Assert.Equal([5, 6], warnings.Select(w => w.Line));
    }

    [Theory]
    [InlineData("image", "a.example/app:1", "b.example/app:1")]
    [InlineData("repository", "a.example/app", "b.example/app")]
    [InlineData("registry", "a.example:5000", "b.example")]
    public void Each_type_accepts_its_kind_of_name(string type, string source, string target) =>
        Assert.Single(Parse($"sync:\n- source: {source}\n  target: {target}\n  type: {type}\n").Sync);

    [Theory]
    [InlineData("repository", "a.example/app:1", "without tag or digest")]
    [InlineData("registry", "a.example/app", "without a repository")]
    [InlineData("image", "a.example//app", "source")]
    public void A_name_of_the_wrong_kind_is_refused(string type, string source, string message)
    {
        var error = Assert.Throws<SyncConfigException>(() => Parse($"sync:\n- source: {source}\n  target: b.example\n  type: {type}\n"));
        Assert.Contains(error.Problems, p => p.Line == 2 && p.Message.Contains(message, StringComparison.Ordinal));
    }
}
