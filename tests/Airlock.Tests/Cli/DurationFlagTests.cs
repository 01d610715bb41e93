using System.Collections;
using Airlock.Cli.Hosting;

namespace Airlock.Tests.Cli;

/// <summary>Every duration flag goes through one parser: Go syntax, a bare number other than 0 is a usage error that names the flag.</summary>
public sealed class DurationFlagTests
{
    private static async Task<(int Code, string Error)> RunAsync(IDictionary environment, params string[] args)
    {
        var error = new StringWriter();
        environment["AIRLOCK_CONFIG"] = "/dev/null";
        var code = await AirlockCli.RunAsync(args, environment, new StringWriter(), error);
        return (code, error.ToString());
    }

    [Theory]
    [InlineData("agent", "--containerd-stop-timeout", "10")]
    [InlineData("agent", "--connect-timeout", "10")]
    [InlineData("images", "copy", "docker.io/library/busybox:1", "oci:/tmp/none", "--connect-timeout", "10")]
    public async Task A_bare_number_is_a_usage_error_with_a_hint_to_add_a_unit(params string[] args)
    {
        var (code, error) = await RunAsync(new Hashtable(), args);

        Assert.Equal(AirlockCli.ExitUsage, code);
        Assert.Contains($"{args[^2]} \"10\" has no unit: add a unit, e.g. 10s", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bare_number_from_the_environment_is_refused_as_from_the_command_line()
    {
        var (code, error) = await RunAsync(new Hashtable { ["AIRLOCK_GC_GRACE"] = "10" }, "registry", "gc", "--dry-run", "--data-dir", Path.GetTempPath());

        Assert.Equal(AirlockCli.ExitUsage, code);
        Assert.Contains("--gc-grace \"10\" has no unit", error, StringComparison.Ordinal);
    }
}
