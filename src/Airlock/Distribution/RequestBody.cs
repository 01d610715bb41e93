using System.Buffers;

namespace Airlock.Distribution;

/// <summary>Small request bodies (manifests, JSON records) read whole, never past a limit.</summary>
public static class RequestBody
{
    /// <summary>A small request body read whole, refused with <paramref name="tooLarge"/> past <paramref name="limit"/> bytes.</summary>
    public static async Task<byte[]> ReadAsync(Stream body, int limit, CancellationToken cancellationToken,
        string what = "manifest", OciErrorCode tooLarge = OciErrorCode.ManifestTooLarge)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await body.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                length += read;
                if (length > limit)
                {
                    throw new OciException(tooLarge, $"{what} exceeds the limit of {limit} bytes");
                }
            }

            return buffer.AsSpan(0, length).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
