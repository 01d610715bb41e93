using System.Net.Sockets;
using System.Text;

namespace Airlock.Node.ImagesDirectory;

/// <summary>
/// systemd's readiness protocol (<c>sd_notify</c>) for <c>Type=notify</c> units: a datagram to the unix socket
/// named by <c>$NOTIFY_SOCKET</c>, in the abstract namespace when the name starts with <c>@</c>. Without the
/// variable (not run by systemd) it does nothing.
/// </summary>
public sealed class SystemdNotifier(string? socketName)
{
    public const string SocketVariable = "NOTIFY_SOCKET";

    public static SystemdNotifier FromEnvironment() => new(Environment.GetEnvironmentVariable(SocketVariable));

    public bool IsEnabled => !string.IsNullOrEmpty(socketName);

    /// <summary>Tells systemd start-up is complete (<c>READY=1</c>).</summary>
    public Task NotifyReadyAsync(CancellationToken cancellationToken) => NotifyAsync("READY=1", cancellationToken);

    /// <summary>Tells systemd the service is stopping (<c>STOPPING=1</c>).</summary>
    public Task NotifyStoppingAsync(CancellationToken cancellationToken) => NotifyAsync("STOPPING=1", cancellationToken);

    public async Task NotifyAsync(string state, CancellationToken cancellationToken)
    {
        if (!IsEnabled)
        {
            return;
        }

        var path = socketName![0] == '@' ? "\0" + socketName[1..] : socketName;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        await socket.SendToAsync(Encoding.UTF8.GetBytes(state), SocketFlags.None, new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
    }
}
