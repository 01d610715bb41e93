using System.Diagnostics;
using System.Globalization;
using Airlock.Bundles;
using Airlock.Oci;
using Spectre.Console;

namespace Airlock.Cli.Hosting;

/// <summary>
/// Progress of image transfers, always on stderr so stdout only ever carries data (an archive written with
/// <c>-o -</c>, JSON): bars with bytes, speed and time left on a terminal, plain lines otherwise, nothing when quiet.
/// What the bars count is what reached the target (<see cref="CopyStage.Transferring"/>), not what was downloaded
/// ahead, so a compressed save advances at the speed it compresses instead of waiting at 99 %.
/// </summary>
internal static class TransferProgress
{
    public static async Task<T> RunAsync<T>(TextWriter error, bool quiet, Func<IProgress<CopyProgress>?, Task<T>> run)
    {
        if (quiet)
        {
            return await run(null).ConfigureAwait(false);
        }

        if (ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            if (console.Profile.Capabilities.Interactive)
            {
                return await console.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                        new TransferSpeedColumn(), new RemainingTimeColumn())
                    .StartAsync(context => run(new Bars(context))).ConfigureAwait(false);
            }
        }

        return await run(PlainLines(error, TimeProvider.System)).ConfigureAwait(false);
    }

    /// <summary>The plain-line progress (no terminal): what a log or a pipe gets.</summary>
    public static IProgress<CopyProgress> PlainLines(TextWriter writer, TimeProvider time) => new Lines(writer, time);

    /// <summary>1536 → "1.5 KiB".</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 ? string.Create(CultureInfo.InvariantCulture, $"{bytes} B") : string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }

    /// <summary>What has reached the target, per blob, and the total planned so far.</summary>
    private sealed class Tally
    {
        private readonly Dictionary<Digest, (long Size, long Done)> _blobs = [];

        public long Total { get; private set; }

        public long Done { get; private set; }

        /// <summary>Counts a blob's progress; returns false for manifests and stages that change nothing.</summary>
        public bool Add(CopyProgress value)
        {
            if (MediaTypes.IsManifest(value.Content.MediaType) || value.Stage is CopyStage.Fetching)
            {
                return false;
            }

            var digest = value.Content.Digest;
            if (!_blobs.TryGetValue(digest, out var blob))
            {
                blob = (value.Content.Size, 0);
                Total += blob.Size;
            }

            var done = value.Stage switch
            {
                CopyStage.Transferring => Math.Min(value.Bytes, blob.Size),
                CopyStage.Skipped or CopyStage.Completed => blob.Size,
                _ => blob.Done,
            };
            Done += done - blob.Done;
            _blobs[digest] = (blob.Size, done);
            return true;
        }
    }

    /// <summary>A total bar, then one bar per blob; blobs already present show as full and marked so.</summary>
    private sealed class Bars(ProgressContext context) : IProgress<CopyProgress>
    {
        private readonly Dictionary<Digest, ProgressTask> _bars = [];
        private readonly Tally _tally = new();
        private ProgressTask? _total;

        public void Report(CopyProgress value)
        {
            lock (_bars)
            {
                if (!_tally.Add(value) && value.Stage != CopyStage.Fetching)
                {
                    return;
                }

                _total ??= context.AddTask("total", maxValue: 1);
                _total.MaxValue = Math.Max(1, _tally.Total);
                _total.Value = _tally.Done;
                if (value.Stage == CopyStage.Planned)
                {
                    return;
                }

                var name = value.Content.Digest.Encoded[..12];
                if (!_bars.TryGetValue(value.Content.Digest, out var bar))
                {
                    bar = context.AddTask(name, maxValue: Math.Max(1, value.Content.Size));
                    _bars[value.Content.Digest] = bar;
                }

                switch (value.Stage)
                {
                    case CopyStage.Skipped:
                        bar.Description = $"{name} (present)";
                        bar.Value = bar.MaxValue;
                        break;
                    case CopyStage.Fetching:
                        bar.Description = string.Create(CultureInfo.InvariantCulture, $"{name} (fetched {100 * value.Bytes / Math.Max(1, value.Content.Size)}%)");
                        break;
                    case CopyStage.Transferring:
                        bar.Description = name;
                        bar.Value = value.Bytes;
                        break;
                    case CopyStage.Completed:
                        bar.Description = name;
                        bar.Value = bar.MaxValue;
                        break;
                }
            }
        }
    }

    /// <summary>
    /// Plain lines, safe to log or pipe (no terminal control codes): one per blob started, skipped or written (with its
    /// size and speed), and a total with speed and time left at most every 5 seconds.
    /// </summary>
    private sealed class Lines(TextWriter writer, TimeProvider time) : IProgress<CopyProgress>
    {
        private static readonly TimeSpan TotalEvery = TimeSpan.FromSeconds(5);
        private readonly Dictionary<Digest, DateTimeOffset> _started = [];
        private readonly Tally _tally = new();
        private readonly DateTimeOffset _begun = time.GetUtcNow();
        private DateTimeOffset _lastTotal = time.GetUtcNow();

        public void Report(CopyProgress value)
        {
            lock (writer)
            {
                _tally.Add(value);
                var now = time.GetUtcNow();
                var line = value.Stage switch
                {
                    CopyStage.Started => Started(value.Content, now),
                    CopyStage.Skipped => $"Skipping {Kind(value.Content)} {value.Content.Digest}: already present",
                    CopyStage.Completed => Written(value.Content, now),
                    _ => null,
                };
                if (line is not null)
                {
                    writer.WriteLine(line);
                }

                if (now - _lastTotal >= TotalEvery && _tally.Total > 0)
                {
                    _lastTotal = now;
                    writer.WriteLine(TotalLine(now - _begun));
                }
            }
        }

        private string Started(Descriptor content, DateTimeOffset now)
        {
            _started.TryAdd(content.Digest, now);
            return string.Create(CultureInfo.InvariantCulture, $"Copying {Kind(content)} {content.Digest} ({content.Size} bytes)");
        }

        private string Written(Descriptor content, DateTimeOffset now)
        {
            if (!_started.Remove(content.Digest, out var started) || MediaTypes.IsManifest(content.MediaType))
            {
                return $"Wrote {Kind(content)} {content.Digest}";
            }

            var elapsed = now - started;
            return $"Wrote {Kind(content)} {content.Digest} ({Bytes(content.Size)} in {Seconds(elapsed)}, {Speed(content.Size, elapsed)})";
        }

        private string TotalLine(TimeSpan elapsed)
        {
            var percent = 100 * _tally.Done / Math.Max(1, _tally.Total);
            var rate = _tally.Done / Math.Max(0.001, elapsed.TotalSeconds);
            var left = rate <= 0 ? "unknown" : Seconds(TimeSpan.FromSeconds((_tally.Total - _tally.Done) / rate));
            return string.Create(CultureInfo.InvariantCulture,
                $"Progress: {Bytes(_tally.Done)} of {Bytes(_tally.Total)} ({percent}%), {Speed(_tally.Done, elapsed)}, about {left} left");
        }

        private static string Seconds(TimeSpan span) => string.Create(CultureInfo.InvariantCulture, $"{span.TotalSeconds:0.0}s");

        private static string Speed(long bytes, TimeSpan elapsed) => Bytes((long)(bytes / Math.Max(0.001, elapsed.TotalSeconds))) + "/s";

        private static string Kind(Descriptor content) => MediaTypes.IsManifest(content.MediaType) ? "manifest" : "blob";
    }
}
