using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry;

/// <summary>
/// Sends a whole blob over plain HTTP/1.1 with sendfile(2) on the connection's socket, as distribution
/// does, instead of Kestrel's copy through user space: the status line and headers are written to the
/// socket directly, then the file, then the connection is closed (<c>Connection: close</c>), because
/// Kestrel no longer knows where the response ended. TLS, HTTP/2 and ranges keep the normal path.
/// </summary>
internal sealed partial class ZeroCopySender(ILogger logger)
{
    /// <summary>Below this the thread hop costs more than the copy saves.</summary>
    private const long MinimumSize = 256 * 1024;
    private const int EAgain = 11;
    private const int EIntr = 4;
    private const int SiocOutQ = 0x5411;

    public async ValueTask<bool> TrySendAsync(HttpContext context, string path, long size)
    {
        if (!OperatingSystem.IsLinux() || size < MinimumSize || context.Request.IsHttps
            || !HttpProtocol.IsHttp11(context.Request.Protocol) || context.Response.HasStarted
            || context.Features.Get<IConnectionSocketFeature>()?.Socket is not { } socket)
        {
            return false;
        }

        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.None);
        }
        catch (FileNotFoundException)
        {
            return false;
        }

        using (file)
        {
            var head = BuildHead(context.Response, size);
            try
            {
                await socket.SendAsync(head, SocketFlags.None, context.RequestAborted).ConfigureAwait(false);
                var fileHandle = file.SafeFileHandle;
                await Task.Factory.StartNew(
                    () => SendFile(socket, fileHandle, size),
                    context.RequestAborted,
                    TaskCreationOptions.LongRunning,
                    TaskScheduler.Default).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
            {
                logger.LogDebug(ex, "Zero-copy send of {Path} ended early", path);
            }
        }

        context.Abort();
        return true;
    }

    private static byte[] BuildHead(HttpResponse response, long size)
    {
        var text = new StringBuilder(256);
        text.Append("HTTP/1.1 200 OK\r\n");
        foreach (var (name, values) in response.Headers)
        {
            if (string.Equals(name, "Content-Length", StringComparison.OrdinalIgnoreCase) || string.Equals(name, "Connection", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            foreach (var value in values)
            {
                text.Append(name).Append(": ").Append(value).Append("\r\n");
            }
        }

        text.Append("Date: ").Append(DateTimeOffset.UtcNow.ToString("r", CultureInfo.InvariantCulture)).Append("\r\n");
        text.Append("Content-Length: ").Append(size.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        text.Append("Connection: close\r\n\r\n");
        return Encoding.ASCII.GetBytes(text.ToString());
    }

    private static void SendFile(Socket socket, Microsoft.Win32.SafeHandles.SafeFileHandle file, long size)
    {
        long offset = 0;
        var socketFd = (int)socket.Handle;
        var fileFd = (int)file.DangerousGetHandle();
        while (offset < size)
        {
            var sent = Native.SendFile(socketFd, fileFd, ref offset, (nuint)Math.Min(size - offset, 1L << 30));
            if (sent > 0)
            {
                continue;
            }

            if (sent == 0)
            {
                throw new IOException("blob ended before its size");
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EAgain)
            {
                // The socket is non-blocking (Kestrel's); wait until it can take more.
                if (!socket.Poll(TimeSpan.FromSeconds(60), SelectMode.SelectWrite))
                {
                    throw new IOException("client stopped reading");
                }

                continue;
            }

            if (errno != EIntr)
            {
                throw new IOException($"sendfile failed with errno {errno}");
            }
        }

        // Kestrel closes an aborted connection abortively (RST), which drops whatever the kernel has not
        // sent yet; so end our side and wait until the client has acknowledged every byte.
        socket.Shutdown(SocketShutdown.Send);
        var deadline = Environment.TickCount64 + 60_000;
        while (Native.Ioctl(socketFd, SiocOutQ, out var unsent) == 0 && unsent > 0 && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(2);
        }
    }

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "sendfile", SetLastError = true)]
        public static partial nint SendFile(int outFd, int inFd, ref long offset, nuint count);

        [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
        public static partial int Ioctl(int fd, nuint request, out int value);
    }
}
