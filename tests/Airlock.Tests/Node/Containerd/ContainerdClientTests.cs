using Airlock.Node.Containerd;

namespace Airlock.Tests.Node.Containerd;

public sealed class ContainerdClientTests(ContainerdProcess daemon) : IClassFixture<ContainerdProcess>
{
    [Fact]
    public async Task Version_answers_over_the_unix_socket_with_the_daemon_version()
    {
        await using var client = daemon.Connect();

        var version = await client.VersionAsync(CancellationToken.None);

        var (exit, ctr) = await daemon.CtrAsync(["version"]);
        Assert.Equal(0, exit);
        Assert.StartsWith("1.", version.Version, StringComparison.Ordinal);
        Assert.Contains("Version:  " + version.Version, ctr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Calls_carry_the_namespace_so_a_lease_created_there_is_listed_only_there()
    {
        await using var client = daemon.Connect("airlock-test");

        await using (var lease = await client.Leases.CreateAsync(TimeSpan.FromMinutes(5), CancellationToken.None))
        {
            Assert.Contains("airlock-test", await client.Namespaces.ListAsync(CancellationToken.None));
            Assert.Contains(lease.Id, await client.Leases.ListAsync(CancellationToken.None));
            Assert.DoesNotContain(lease.Id, await client.WithNamespace("other").Leases.ListAsync(CancellationToken.None));
        }

        Assert.Empty(await client.Leases.ListAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_cancelled_call_throws_OperationCanceledException()
    {
        await using var client = daemon.Connect();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.VersionAsync(cancelled.Token));
    }

    [Fact]
    public async Task A_socket_nobody_listens_on_fails_with_Unavailable()
    {
        await using var client = ContainerdClient.Connect(Path.Combine(daemon.RootPath, "nobody.sock"));

        var error = await Assert.ThrowsAsync<ContainerdException>(() => client.VersionAsync(CancellationToken.None));

        Assert.Equal(Grpc.Core.StatusCode.Unavailable, error.Code);
    }
}
