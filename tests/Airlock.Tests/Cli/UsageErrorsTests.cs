using System.Collections;
using Airlock.Cli.Commands;
using Airlock.Cli.Hosting;
using Airlock.Configuration;

namespace Airlock.Tests.Cli;

/// <summary>Typos get "did you mean", and a flag-like word is never taken for an image name.</summary>
public sealed class UsageErrorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("airlock-usage-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(args, new Hashtable(), output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task A_misspelt_verb_gets_the_verb_it_resembles()
    {
        var (code, _, error) = await RunAsync("imgaes", "list", "x.yaml");
        Assert.Equal(2, code);
        Assert.Contains("no command 'imgaes'; did you mean 'images'?", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Required command", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_misspelt_flag_before_an_image_is_an_unknown_flag_not_an_image_name()
    {
        var archive = Path.Combine(_dir, "x.tar");
        var (code, _, error) = await RunAsync("images", "save", "--platfrom", "linux/amd64", "-o", archive, "busybox:1.36");
        Assert.Equal(2, code);
        Assert.Contains("unknown flag --platfrom for 'airlock images save'; did you mean --platform?", error, StringComparison.Ordinal);
        Assert.False(File.Exists(archive));
    }

    [Fact]
    public async Task A_word_after_double_dash_or_a_flag_value_is_a_value()
    {
        // After "--" even a dashed word is a path (here one that does not exist: an ordinary error, not a usage one).
        var (code, _, error) = await RunAsync("images", "list", "--", "--not-a-flag.yaml");
        Assert.Equal(1, code);
        Assert.Contains("--not-a-flag.yaml does not exist", error, StringComparison.Ordinal);

        // The value of --creds may start with a dash.
        (code, _, error) = await RunAsync("images", "save", "-o", Path.Combine(_dir, "y.tar"), "--creds", "-user:pass", "oci:/nonexistent:x");
        Assert.Equal(1, code);
        Assert.DoesNotContain("unknown flag", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_for_a_verb_the_binary_does_not_have_exits_2_so_install_sh_can_ask()
    {
        var (code, output, error) = await RunAsync("frobnicate", "--help");
        Assert.Equal(2, code);
        Assert.Contains("no command 'frobnicate'", error, StringComparison.Ordinal);
        Assert.Contains("commands: ", error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public async Task Help_checks_flags_and_values_but_not_required_ones()
    {
        Assert.Equal(0, (await RunAsync("images", "load", "--help")).Code);
        Assert.Equal(0, (await RunAsync("agent", "--containerd-version", "2", "--help")).Code);
        var (code, _, error) = await RunAsync("agent", "--containerd-version", "9", "--help");
        Assert.Equal(2, code);
        Assert.Contains("'9'", error, StringComparison.Ordinal);
        (code, _, error) = await RunAsync("agent", "--imagesdir", "/x", "--help");
        Assert.Equal(2, code);
        Assert.Contains("did you mean --images-dir?", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("imgaes", "images")]
    [InlineData("--platfrom", "--platform")]
    [InlineData("cluster-cdir", "cluster-cidr")]
    [InlineData("flanel-backend", "flannel-backend")]
    [InlineData("zzz", null)]
    [InlineData("images", null)]
    public void Closest_finds_typos_and_nothing_else(string word, string? expected) =>
        Assert.Equal(expected, Spelling.Closest(word, ["images", "--platform", "--parallelism", "cluster-cidr", "service-cidr", "flannel-backend", "agent"]));

    [Theory]
    [InlineData("images sync once -c s.yaml", "images sync --once --file s.yaml")]
    [InlineData("images sync server --config=s.yaml --insecure", "images sync --watch --file=s.yaml --insecure")]
    [InlineData("images sync check -c s.yaml -f other.yaml", "images sync --check -c s.yaml -f other.yaml")]
    [InlineData("images sync -f s.yaml --once", "images sync -f s.yaml --once")]
    [InlineData("registry -c cfg.yaml", "registry -c cfg.yaml")]
    public void Regsync_command_shapes_become_airlock_flags(string args, string expected) =>
        Assert.Equal(expected, string.Join(' ', ImagesSyncCommand.FromRegsyncForm(args.Split(' '))));

    [Fact]
    public async Task Regsync_once_with_c_reads_the_sync_file_not_airlock_config()
    {
        var file = Path.Combine(_dir, "sync.yaml");
        File.WriteAllText(file, "version: 1\nsync:\n- source: 127.0.0.1:1/a:1\n  target: 127.0.0.1:1/b:1\n  type: image\n");
        // The file is read as regsync's (not as config.yaml, whose error would be about the "sync" key); the copy then
        // fails on the closed port, image by image.
        var (code, output, error) = await RunAsync("images", "sync", "once", "-c", file, "--connect-timeout", "1s");
        Assert.Equal(1, code);
        Assert.DoesNotContain("must be a scalar", error, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:1/a:1", output + error, StringComparison.Ordinal);
    }
}
