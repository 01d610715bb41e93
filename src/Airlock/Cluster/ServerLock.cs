using Airlock.IO;

namespace Airlock.Cluster;

/// <summary>The server is running from this data directory, so its certificates cannot be rotated now.</summary>
public sealed class ServerRunningException(string message) : Exception(message);

/// <summary>
/// An exclusive <c>flock(2)</c> on <c>server/server.lock</c>: held by the running server for its lifetime and, briefly, by the
/// offline certificate commands. The kernel drops it when its holder dies, so a crashed server never blocks a rotation.
/// </summary>
public sealed class ServerLock : IDisposable
{
    private readonly FileLock _lock;

    private ServerLock(FileLock held) => _lock = held;

    /// <summary>
    /// Takes the lock or throws <see cref="ServerRunningException"/> saying <paramref name="refusal"/> cannot be done now.
    /// It waits up to a second first: a holder that just let go may still be referenced for a moment by a process forked
    /// from it that has not exec'd yet (flock belongs to the open file, which fork shares).
    /// </summary>
    public static ServerLock Acquire(ServerDirectory directory, string refusal)
    {
        Directory.CreateDirectory(directory.Root);
        var deadline = Environment.TickCount64 + 1000;
        while (true)
        {
            if (FileLock.TryAcquire(directory.Lock, exclusive: true) is { } held)
            {
                return new ServerLock(held);
            }

            if (Environment.TickCount64 >= deadline)
            {
                throw new ServerRunningException($"{refusal}: an airlock server is running from {directory.DataDirectory} (it holds {directory.Lock}); "
                    + "stop it first (e.g. systemctl stop airlock-server), then try again");
            }

            Thread.Sleep(20);
        }
    }

    public void Dispose() => _lock.Dispose();
}
