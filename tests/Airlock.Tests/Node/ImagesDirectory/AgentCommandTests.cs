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
}
