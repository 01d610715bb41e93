using System.Collections;
using Airlock.Cli.Hosting;

namespace Airlock.Tests.Node.ImagesDirectory;

public sealed class AgentCommandTests
{
    [Fact]
    public async Task A_missing_containerd_socket_is_named_in_the_error_and_exits_1_without_creating_the_images_directory()
    {
        var scratch = Directory.CreateTempSubdirectory("airlock-agent-cli-").FullName;
        try
        {
            var socket = Path.Combine(scratch, "missing.sock");
            var images = Path.Combine(scratch, "images");
            var error = new StringWriter();

            var code = await AirlockCli.RunAsync(["agent", "--images-dir", images, "--containerd-socket", socket, "--watch", "false"], new Hashtable(), new StringWriter(), error);

            Assert.Equal(AirlockCli.ExitError, code);
            Assert.Contains(socket, error.ToString(), StringComparison.Ordinal);
            Assert.False(Directory.Exists(images));
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    [Fact]
    public async Task P2p_share_tags_without_embedded_registry_is_a_usage_error_naming_the_flag_it_needs()
    {
        var error = new StringWriter();

        var code = await AirlockCli.RunAsync(["agent", "--p2p-share-tags"], new Hashtable(), new StringWriter(), error);

        Assert.Equal(AirlockCli.ExitUsage, code);
        Assert.Contains("--p2p-share-tags is for --embedded-registry", error.ToString(), StringComparison.Ordinal);
    }
}
