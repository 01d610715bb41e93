using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;

namespace Airlock.Hosting;

/// <summary>
/// The memory Kestrel's socket transport receives into: blocks of <see cref="BlockSize"/> instead of
/// Kestrel's 4 KiB. The transport receives into whatever is left of the pipe's current block, so with
/// 4 KiB blocks a 512 MiB push took ~265,000 recv calls (half of them zero-byte "wait for data" calls);
/// with 128 KiB blocks it takes a few thousand, which is most of the push's CPU outside hashing.
/// </summary>
/// <remarks>
/// Blocks are pinned (the pinned object heap), so a receive does not pin them again. At most
/// <see cref="MaxRetainedBlocks"/> free blocks are kept; the rest go back to the GC, so memory is bounded by
/// what connections hold at once: the transport pauses a connection's receives at 1 MiB unread
/// (SocketTransportOptions.MaxReadBufferSize), and a connection waits for data before it takes a block.
/// </remarks>
internal sealed class ReceiveBufferPool : MemoryPool<byte>
{
    /// <summary>
    /// Bytes per block, so at most per recv call. Measured (bench/RESULTS.md): 64 and 256 KiB blocks were
    /// slower than 128 KiB.
    /// </summary>
    internal const int BlockSize = 128 << 10;

    /// <summary>Free blocks kept for reuse (8 MiB); blocks returned beyond this go to the GC.</summary>

    internal const int MaxRetainedBlocks = 64;

    private readonly ConcurrentStack<Block> _free = new();

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        return _free.TryPop(out var block) ? block.Lease() : new Block(this).Lease();
    }

    protected override void Dispose(bool disposing) => _free.Clear();

    private void Return(Block block)
    {
        if (_free.Count < MaxRetainedBlocks)
        {
            _free.Push(block);
        }
    }

    private sealed class Block(ReceiveBufferPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);
        private int _leased;

        public Memory<byte> Memory => MemoryMarshal.CreateFromPinnedArray(_array, 0, _array.Length);

        public Block Lease()
        {
            _leased = 1;
            return this;
        }

        public void Dispose()
        {
            // A second Dispose of one lease must not put the block in the free list twice.
            if (Interlocked.Exchange(ref _leased, 0) == 1)
            {
                pool.Return(this);
            }
        }
    }
}

/// <summary>
/// Hands Kestrel's socket transport (memory pool owner "kestrel") a <see cref="ReceiveBufferPool"/>; every
/// other pool comes from Kestrel's own factory.
/// </summary>
internal sealed class ReceiveBufferPoolFactory(IMemoryPoolFactory<byte> kestrelDefault) : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) =>
        options?.Owner == "kestrel" ? new ReceiveBufferPool() : kestrelDefault.Create(options);
}
