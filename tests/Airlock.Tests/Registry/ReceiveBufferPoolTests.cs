using System.Net;
using System.Security.Cryptography;
using Airlock.Hosting;
using Airlock.Registry;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;

namespace Airlock.Tests.Registry;

public sealed class ReceiveBufferPoolTests
{
    [Fact]
    public async Task Kestrel_socket_transport_gets_128_KiB_blocks_and_a_big_push_still_round_trips()
    {
        await using var registry = await TestRegistry.StartAsync();
        var factory = registry.Server.Services.GetRequiredService<IMemoryPoolFactory<byte>>();

        // "kestrel" is the owner the socket transport names when it creates its pool.
        using var transport = factory.Create(new MemoryPoolOptions { Owner = "kestrel" });
        Assert.IsType<ReceiveBufferPool>(transport);
        using (var block = transport.Rent(4096))
        {
            Assert.Equal(128 << 10, block.Memory.Length);
        }

        using var other = factory.Create(new MemoryPoolOptions { Owner = "something-else" });
        Assert.IsNotType<ReceiveBufferPool>(other);

        // A body of many blocks (and not a multiple of one) arrives whole through the big blocks.
        var body = RandomNumberGenerator.GetBytes((5 << 20) + 12345);
        using var push = await registry.PushBlobAsync("app", body);
        Assert.Equal(HttpStatusCode.Created, push.StatusCode);
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(body));
        Assert.Equal(body, await registry.Client.GetByteArrayAsync($"/v2/app/blobs/{digest}"));
    }

    [Fact]
    public void Returned_blocks_are_reused_once_even_when_disposed_twice()
    {
        using var pool = new ReceiveBufferPool();
        var first = pool.Rent();
        var memory = first.Memory;
        first.Dispose();
        first.Dispose();

        using var again = pool.Rent();
        using var fresh = pool.Rent();
        Assert.True(again.Memory.Span == memory.Span, "the returned block is handed out again");
        Assert.False(fresh.Memory.Span == memory.Span, "a block disposed twice must not be handed out twice");
    }

    [Fact]
    public void Rent_larger_than_a_block_is_refused()
    {
        using var pool = new ReceiveBufferPool();
        Assert.Equal(ReceiveBufferPool.BlockSize, pool.MaxBufferSize);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(ReceiveBufferPool.BlockSize + 1));
    }
}
