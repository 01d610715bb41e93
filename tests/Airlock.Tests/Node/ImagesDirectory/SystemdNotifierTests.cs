using System.Net.Sockets;
using System.Text;
using Airlock.Node.ImagesDirectory;

namespace Airlock.Tests.Node.ImagesDirectory;

public sealed class SystemdNotifierTests
{
    [Fact]
    public async Task A_name_starting_with_at_is_sent_to_the_abstract_socket_of_that_name()
    {
        var name = "airlock-notify-test-" + Guid.NewGuid().ToString("N");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint("\0" + name));

        await new SystemdNotifier("@" + name).NotifyReadyAsync(CancellationToken.None);

        var buffer = new byte[64];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = await listener.ReceiveAsync(buffer, SocketFlags.None, wait.Token);
        Assert.Equal("READY=1", Encoding.UTF8.GetString(buffer, 0, received));
    }

    [Fact]
    public async Task Without_a_notify_socket_nothing_is_sent_and_nothing_fails()
    {
        var notifier = new SystemdNotifier(null);

        await notifier.NotifyReadyAsync(CancellationToken.None);

        Assert.False(notifier.IsEnabled);
    }
}
