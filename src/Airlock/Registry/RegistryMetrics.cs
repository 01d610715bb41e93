using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Airlock.Content;
using Microsoft.AspNetCore.Http;

namespace Airlock.Registry;

/// <summary>
/// Counters for <c>/metrics</c> in the Prometheus text format: requests by method and status, a latency
/// histogram, bytes in and out, and the store's size (recomputed at most once a minute, it walks the disk).
/// </summary>
internal sealed class RegistryMetrics(IBlobStore blobs, TimeProvider time)
{
    private static readonly double[] Bounds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    private readonly ConcurrentDictionary<(string Method, int Status), StrongBox> _requests = new();
    private readonly long[] _buckets = new long[Bounds.Length + 1];
    private long _latencyTicks;
    private long _count;
    private long _bytesIn;
    private long _bytesOut;
    private StorageSample? _storeSize;

    public void AddBytesIn(long bytes) => Interlocked.Add(ref _bytesIn, bytes);

    public void AddBytesOut(long bytes) => Interlocked.Add(ref _bytesOut, bytes);

    public void Record(string method, int status, long startTimestamp)
    {
        var elapsed = Stopwatch.GetElapsedTime(startTimestamp);
        // Only the methods the API knows become labels, so clients cannot grow the series without bound.
        var label = HttpMethods.IsGet(method) ? HttpMethods.Get
            : HttpMethods.IsHead(method) ? HttpMethods.Head
            : HttpMethods.IsPut(method) ? HttpMethods.Put
            : HttpMethods.IsPost(method) ? HttpMethods.Post
            : HttpMethods.IsPatch(method) ? HttpMethods.Patch
            : HttpMethods.IsDelete(method) ? HttpMethods.Delete
            : "OTHER";
        var box = _requests.GetOrAdd((label, status), static _ => new StrongBox());
        Interlocked.Increment(ref box.Value);
        var seconds = elapsed.TotalSeconds;
        var bucket = 0;
        while (bucket < Bounds.Length && seconds > Bounds[bucket])
        {
            bucket++;
        }

        Interlocked.Increment(ref _buckets[bucket]);
        Interlocked.Add(ref _latencyTicks, elapsed.Ticks);
        Interlocked.Increment(ref _count);
    }

    public async Task<string> RenderAsync(CancellationToken cancellationToken)
    {
        var text = new StringBuilder(2048);
        var c = CultureInfo.InvariantCulture;
        text.Append("# HELP airlock_registry_requests_total HTTP requests served, by method and status.\n");
        text.Append("# TYPE airlock_registry_requests_total counter\n");
        foreach (var ((method, status), box) in _requests.OrderBy(e => e.Key.Method, StringComparer.Ordinal).ThenBy(e => e.Key.Status))
        {
            text.Append(c, $"airlock_registry_requests_total{{method=\"{method}\",status=\"{status}\"}} {Interlocked.Read(ref box.Value)}\n");
        }

        text.Append("# HELP airlock_registry_request_duration_seconds Time to serve a request.\n");
        text.Append("# TYPE airlock_registry_request_duration_seconds histogram\n");
        long cumulative = 0;
        for (var i = 0; i < Bounds.Length; i++)
        {
            cumulative += Interlocked.Read(ref _buckets[i]);
            text.Append(c, $"airlock_registry_request_duration_seconds_bucket{{le=\"{Bounds[i]}\"}} {cumulative}\n");
        }

        cumulative += Interlocked.Read(ref _buckets[Bounds.Length]);
        text.Append(c, $"airlock_registry_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n");
        text.Append(c, $"airlock_registry_request_duration_seconds_sum {TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks)).TotalSeconds}\n");
        text.Append(c, $"airlock_registry_request_duration_seconds_count {Interlocked.Read(ref _count)}\n");

        text.Append("# HELP airlock_registry_bytes_received_total Blob and manifest bytes received.\n# TYPE airlock_registry_bytes_received_total counter\n");
        text.Append(c, $"airlock_registry_bytes_received_total {Interlocked.Read(ref _bytesIn)}\n");
        text.Append("# HELP airlock_registry_bytes_sent_total Blob and manifest bytes sent.\n# TYPE airlock_registry_bytes_sent_total counter\n");
        text.Append(c, $"airlock_registry_bytes_sent_total {Interlocked.Read(ref _bytesOut)}\n");

        var (bytes, count) = await StoreSizeAsync(cancellationToken).ConfigureAwait(false);
        text.Append("# HELP airlock_registry_store_bytes Bytes of blobs stored.\n# TYPE airlock_registry_store_bytes gauge\n");
        text.Append(c, $"airlock_registry_store_bytes {bytes}\n");
        text.Append("# HELP airlock_registry_store_blobs Blobs stored.\n# TYPE airlock_registry_store_blobs gauge\n");
        text.Append(c, $"airlock_registry_store_blobs {count}\n");
        return text.ToString();
    }

    private async Task<(long Bytes, long Blobs)> StoreSizeAsync(CancellationToken cancellationToken)
    {
        if (_storeSize is { } cached && time.GetUtcNow() - cached.At < TimeSpan.FromMinutes(1))
        {
            return (cached.Bytes, cached.Blobs);
        }

        var measured = await blobs.MeasureAsync(time, cancellationToken).ConfigureAwait(false);
        _storeSize = measured;
        return (measured.Bytes, measured.Blobs);
    }

    private sealed class StrongBox
    {
        public long Value;
    }
}
