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
    public async Task Embedded_registry_with_a_containerd_socket_needs_hosts_dir_and_hosts_dir_needs_a_containerd_socket()
    {
        var scratch = Directory.CreateTempSubdirectory("airlock-agent-cli-").FullName;
        try
        {
            // Any existing socket will do: the usage is refused before anything connects to it.
            var socketPath = Path.Combine(scratch, "c.sock");
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            socket.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
            var token = Path.Combine(scratch, "token");
            await File.WriteAllTextAsync(token, "K10" + new string('a', 64) + "::node:secret\n");
            string[] joined = ["--server", "https://server.airgap.test:9443", "--token-file", token, "--embedded-registry"];

            var withoutHosts = new StringWriter();
            var code = await AirlockCli.RunAsync(["agent", .. joined, "--containerd-socket", socketPath], new Hashtable(), new StringWriter(), withoutHosts);
            Assert.Equal(AirlockCli.ExitUsage, code);
            Assert.Contains("--embedded-registry with --containerd-socket needs --hosts-dir", withoutHosts.ToString(), StringComparison.Ordinal);
            Assert.Contains("config_path", withoutHosts.ToString(), StringComparison.Ordinal);

            var withoutSocket = new StringWriter();
            code = await AirlockCli.RunAsync(["agent", .. joined, "--hosts-dir", scratch], new Hashtable(), new StringWriter(), withoutSocket);
            Assert.Equal(AirlockCli.ExitUsage, code);
            Assert.Contains("--hosts-dir is for --containerd-socket", withoutSocket.ToString(), StringComparison.Ordinal);

            var missing = Path.Combine(scratch, "missing.d");
            var missingHosts = new StringWriter();
            code = await AirlockCli.RunAsync(["agent", .. joined, "--containerd-socket", socketPath, "--hosts-dir", missing], new Hashtable(), new StringWriter(), missingHosts);
            Assert.NotEqual(AirlockCli.ExitOk, code);
            Assert.Contains(missing, missingHosts.ToString(), StringComparison.Ordinal);
            Assert.False(Directory.Exists(missing));
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
