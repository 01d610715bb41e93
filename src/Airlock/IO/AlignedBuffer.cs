using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Airlock.IO;

/// <summary>
/// A buffer of native memory aligned to <see cref="Alignment"/>, as O_DIRECT writes need (their memory, file
/// offset and length must all be multiples of the device's block size; 4096 covers 512- and 4K-sector disks).
/// Rented from a small pool and given back with <see cref="Return"/>, so a push does not allocate per buffer.
/// </summary>
internal sealed unsafe class AlignedBuffer : MemoryManager<byte>
{
    public const int Alignment = 4096;

    // Two pushes' worth of 1 MiB buffers; more concurrent ingests allocate and free their own.
    private const int Pooled = 8;
    private static readonly ConcurrentDictionary<int, ConcurrentBag<AlignedBuffer>> Pool = new();

    private readonly byte* _memory;
    private bool _freed;

    private AlignedBuffer(int length)
    {
        Length = length;
        _memory = (byte*)NativeMemory.AlignedAlloc((nuint)length, Alignment);
    }

    public int Length { get; }

    public static AlignedBuffer Rent(int length)
    {
        if (length % Alignment != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"must be a multiple of {Alignment}");
        }

        return Pool.TryGetValue(length, out var bag) && bag.TryTake(out var buffer) ? buffer : new AlignedBuffer(length);
    }

    /// <summary>Gives the buffer back (to the pool while it has room, else to the allocator).</summary>
    public void Return()
    {
        var bag = Pool.GetOrAdd(Length, _ => []);
        if (bag.Count < Pooled)
        {
            bag.Add(this);
        }
        else
        {
            Free();
        }
    }

    public override Span<byte> GetSpan() => new(_memory, Length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_memory + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing) => Free();

    private void Free()
    {
        if (!_freed)
        {
            _freed = true;
            NativeMemory.AlignedFree(_memory);
        }
    }
}
