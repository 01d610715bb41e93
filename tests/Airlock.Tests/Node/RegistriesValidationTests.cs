using Airlock.Node;

namespace Airlock.Tests.Node;

/// <summary>Validation reports every problem of a file at once, each with its line.</summary>
public sealed class RegistriesValidationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("al-regval-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static IReadOnlyList<RegistriesProblem> Validate(string yaml)
    {
        var (file, problems) = RegistriesFileReader.Parse(yaml, "registries.yaml");
        return RegistriesValidator.Validate(file, problems);
    }

    [Fact]
    public void Every_problem_is_reported_at_once_with_its_line()
    {
        var ca = Path.Combine(_dir, "ca.pem");
        File.WriteAllText(ca, "x");
        var missing = Path.Combine(_dir, "missing.pem");
        var problems = Validate($"""
            mirrors:
              docker.io:
                endpoints:
                  - https://mirror.example.com
              quay.io:
                endpoint:
                  - htp://mirror.example.com
                  - https://mirror.example.com:port
                  - https://ok.example.com
                rewrite:
                  "^(unclosed": "x/$1"
                  "^(?=a)b": "y"
            configs:
              registry.example.com:
                auth:
                  username: u
                  token: abc
                tls:
                  ca_file: {ca}
                  cert_file: {missing}
                  insecure_skip_verify: maybe
              https://other.example.com:
                tls:
                  key_file: {ca}
            """);
        var errors = problems.Where(p => p.Severity == ProblemSeverity.Error).Select(p => (p.Line, p.Message)).ToList();
        var warnings = problems.Where(p => p.Severity == ProblemSeverity.Warning).Select(p => (p.Line, p.Message)).ToList();

        // Unknown keys are ignored by K3s: warnings, named with a hint, so the file still works as it does under K3s.
        Assert.Contains(warnings, e => e.Line == 3 && e.Message.Contains("unknown key \"endpoints\"", StringComparison.Ordinal) && e.Message.Contains("did you mean \"endpoint\"", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 7 && e.Message.Contains("unknown scheme \"htp\"", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 8 && e.Message.Contains("invalid port", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 11 && e.Message.Contains("not a valid regular expression", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 12 && e.Message.Contains("RE2", StringComparison.Ordinal));
        Assert.Contains(warnings, e => e.Line == 17 && e.Message.Contains("unknown key \"token\"", StringComparison.Ordinal) && e.Message.Contains("identity_token", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 20 && e.Message.Contains("cannot be read", StringComparison.Ordinal) && e.Message.Contains(missing, StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 20 && e.Message.Contains("cert_file but no key_file", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 21 && e.Message.Contains("true or false", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 22 && e.Message.Contains("without scheme or path", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Line == 24 && e.Message.Contains("key_file but no cert_file", StringComparison.Ordinal));
        Assert.Equal(9, errors.Count);
        Assert.DoesNotContain(problems, p => p.Line == 19);
        Assert.All(problems, p => Assert.StartsWith($"registries.yaml:{p.Line}: ", p.ToString(), StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_guides_auth_token_is_a_warning_naming_the_key_and_the_file_still_renders_for_the_agent()
    {
        var registries = Path.Combine(_dir, "registries.yaml");
        await File.WriteAllTextAsync(registries, "configs:\n  registry.example.com:\n    auth:\n      username: u\n      password: p\n      token: abc\n");
        var settings = new Airlock.Node.ContainerdSupervision.ContainerdRenderSettings
        {
            RegistriesPath = registries,
            Config = new ContainerdConfigOptions { DataDir = Path.Combine(_dir, "data") },
        };

        // What the agent renders before it starts containerd; a rejected outcome stops it.
        var outcome = await Airlock.Node.ContainerdSupervision.ContainerdConfigRendering.RenderAsync(settings, CancellationToken.None);

        Assert.False(outcome.Rejected, string.Join("; ", outcome.Problems));
        var problem = Assert.Single(outcome.Problems);
        Assert.Equal((ProblemSeverity.Warning, 6), (problem.Severity, problem.Line));
        Assert.StartsWith($"{registries}:6: warning: unknown key \"token\" in configs.\"registry.example.com\".auth is ignored, as K3s ignores it", problem.ToString(), StringComparison.Ordinal);
        Assert.Contains("username = \"u\"", await File.ReadAllTextAsync(Path.Combine(settings.Config.ContainerdDir, "config.toml")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"yes\"", "write true without quotes")]
    [InlineData("'true'", "write true without quotes")]
    [InlineData("\"off\"", "write false without quotes")]
    public void A_quoted_boolean_is_an_error_as_in_K3s_whose_yaml_v2_cannot_unmarshal_a_string_into_a_bool(string value, string fix)
    {
        var problems = Validate($"configs:\n  registry.example.com:\n    tls:\n      insecure_skip_verify: {value}\n");

        var problem = Assert.Single(problems);
        Assert.Equal((ProblemSeverity.Error, 4), (problem.Severity, problem.Line));
        Assert.Contains("must be a YAML boolean, not the quoted string", problem.Message, StringComparison.Ordinal);
        Assert.Contains(fix, problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_YAML_1_1_booleans_are_booleans_as_yaml_v2_reads_them()
    {
        var (file, problems) = RegistriesFileReader.Parse("configs:\n  a.example:\n    tls:\n      insecure_skip_verify: yes\n  b.example:\n    tls:\n      insecure_skip_verify: Off\n", "registries.yaml");

        Assert.Empty(problems);
        Assert.True(file.FindConfig("a.example")!.Tls!.InsecureSkipVerify);
        Assert.False(file.FindConfig("b.example")!.Tls!.InsecureSkipVerify);
    }

    [Theory]
    [InlineData("ca_file", "ca.pem")]
    [InlineData("cert_file", "certs/client.pem")]
    [InlineData("key_file", "./client.key")]
    public void A_relative_tls_file_is_refused_explaining_that_containerd_resolves_it_under_certs_d(string key, string path)
    {
        var problems = Validate($"configs:\n  registry.example.com:\n    tls:\n      {key}: {path}\n");

        var problem = Assert.Single(problems, p => p.Message.Contains("relative path", StringComparison.Ordinal));
        Assert.Equal((ProblemSeverity.Error, 4), (problem.Severity, problem.Line));
        Assert.Contains($"{key} \"{path}\" of \"registry.example.com\" is a relative path: containerd resolves it against the certs.d/<registry>/ directory", problem.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(problems, p => p.Message.Contains("cannot be read", StringComparison.Ordinal));
    }

    [Fact]
    public void Wrong_shapes_that_make_K3s_refuse_the_file_are_errors()
    {
        var problems = Validate("""
            mirrors:
              docker.io:
                endpoint: https://mirror.example.com
            configs:
              quay.io:
                tls: yes
            """);
        Assert.Contains(problems, p => p.Line == 3 && p.Message.Contains("must be a list", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 6 && p.Message.Contains("must be a map", StringComparison.Ordinal));
    }

    [Fact]
    public void Rewrites_with_backslash_or_quote_are_no_problem_since_hosts_toml_escapes_them()
    {
        var problems = Validate("mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com\"]\n    rewrite:\n      '^lib\\.(\\w+)': 'x\"/$1'\n");
        Assert.Empty(problems);
    }

    [Fact]
    public void A_rewrite_pattern_with_both_quote_kinds_is_refused_with_the_x22_spelling_as_the_fix()
    {
        var problems = Validate("mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.com\"]\n    rewrite:\n      \"^it's/\\\"(.*)\\\"$\": 'x/$1'\n");

        var problem = Assert.Single(problems);
        Assert.Equal((5, ProblemSeverity.Error), (problem.Line, problem.Severity));
        Assert.Contains("write the quote as \\x22", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_yaml_is_one_error_with_its_line()
    {
        var problems = Validate("mirrors:\n  docker.io:\n    endpoint: [unclosed\n");
        var problem = Assert.Single(problems);
        Assert.Equal(ProblemSeverity.Fatal, problem.Severity);
        Assert.Contains("not valid YAML", problem.Message, StringComparison.Ordinal);
        Assert.True(problem.Line >= 3, problem.ToString());
    }

    [Fact]
    public void Duplicate_keys_are_fatal_with_the_line_of_the_second()
    {
        var problem = Assert.Single(Validate("mirrors:\n  docker.io:\n    endpoint: [a.example.com]\n  docker.io:\n    endpoint: [b.example.com]\n"));
        Assert.Equal((4, ProblemSeverity.Fatal), (problem.Line, problem.Severity));
        Assert.Contains("Duplicate key docker.io", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Quirks_that_silently_lose_settings_are_warnings()
    {
        var problems = Validate("""
            mirrors:
              "*":
                endpoint:
                  - https://m.example.com
                  - https://m.example.com/v2
              quay.io:
                rewrite:
                  "^(.*)": "q/$1"
            configs:
              "*":
                tls:
                  insecure_skip_verify: true
            auths: {}
            """);
        Assert.All(problems, p => Assert.Equal(ProblemSeverity.Warning, p.Severity));
        Assert.Contains(problems, p => p.Line == 5 && p.Message.Contains("same as line 4", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 6 && p.Message.Contains("no endpoints", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 10 && p.Message.Contains("configs.\"*\" is ignored", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Line == 13 && p.Message.Contains("deprecated", StringComparison.Ordinal));
    }

    [Fact]
    public void Empty_file_and_null_sections_are_valid()
    {
        Assert.Empty(Validate(string.Empty));
        Assert.Empty(Validate("mirrors:\nconfigs:\n"));
    }
}
