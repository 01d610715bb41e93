using Airlock.Node.Containerd;
using Microsoft.Extensions.Logging;

namespace Airlock.Node.ImagesDirectory;

/// <summary>
/// The node agent's start-up as K3s orders it: the images directory is processed completely, only then is the
/// service reported ready to systemd (so pods scheduled after start-up find their air-gap images), and then
/// later changes are imported by the watcher until stopped.
/// </summary>
public sealed class ImagesDirectoryAgent(ContainerdClient client, ImagesDirectoryOptions options, SystemdNotifier notifier, TimeProvider timeProvider)
{
    private ImagesDirectoryWatcher? _watcher;

    /// <summary>The importer all passes go through (its <see cref="ImagesDirectoryImporter.PauseAsync"/> holds them back).</summary>
    public ImagesDirectoryImporter Importer { get; } = new(client, options);

    /// <summary>Keep watching after the first pass (default, as K3s).</summary>
    public bool Watch { get; init; } = true;

    public TimeSpan Debounce { get; init; } = ImagesDirectoryWatcher.DefaultDebounce;

    /// <summary>The results of the start-up pass, once it ran.</summary>
    public IReadOnlyList<ImageFileResult>? FirstPass { get; private set; }

    /// <summary>"2 of 5 images files failed to import: a.tar (reason); b.txt (reason)".</summary>
    public static string FailureSummary(IReadOnlyCollection<ImageFileResult> failed) =>
        $"{failed.Count} images file(s) failed to import: {string.Join("; ", failed.Select(f => $"{f.File} ({f.Error})"))}";

    /// <summary>Called with the results of the start-up pass and of every pass the watcher runs.</summary>
    public Action<IReadOnlyList<ImageFileResult>>? Imported { get; init; }

    /// <summary>
    /// Asks the watcher for another full pass (files whose import failed because containerd went away are retried;
    /// <c>.cache.json</c> skips the rest). Does nothing unless watching.
    /// </summary>
    public void Rescan() => _watcher?.RequestScan();

    /// <summary>
    /// The start-up pass, then (with <see cref="Watch"/>) a pass per change until <paramref name="cancellationToken"/> stops
    /// it. Watching, a stop is a normal end whenever it comes — during the start-up pass too (the next start imports what
    /// is left) — and systemd hears <c>STOPPING=1</c>; a one-shot run (no watch) stopped before its pass finished throws,
    /// since its exit status is its only report.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RunPassesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (Watch && cancellationToken.IsCancellationRequested)
        {
            await notifier.NotifyStoppingAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task RunPassesAsync(CancellationToken cancellationToken)
    {
        var logger = options.Logger;
        // An unreachable containerd must stop start-up, not turn every file into a "failed" one and report ready.
        await client.VersionAsync(cancellationToken).ConfigureAwait(false);
        if (!Directory.Exists(options.Directory))
        {
            if (options.MustExist)
            {
                throw new DirectoryNotFoundException($"images directory {options.Directory} does not exist: create it, or give --images-dir the directory the archives are in");
            }

            logger.LogInformation("Images directory {Directory} does not exist yet; created it, empty", options.Directory);
            Directory.CreateDirectory(options.Directory);
        }

        var importer = Importer;
        using var watcher = new ImagesDirectoryWatcher(importer, options.Directory, timeProvider, logger)
        {
            Debounce = Debounce,
            Imported = results =>
            {
                Imported?.Invoke(results);
                ReleaseMemory(results);
            },
        };
        _watcher = watcher;
        if (Watch)
        {
            // Recording from before the start-up pass: files copied in during it get a pass of their own.
            watcher.Start();
        }

        var results = await importer.ImportAsync(cancellationToken).ConfigureAwait(false);
        FirstPass = results;
        var failed = results.Where(r => r.Status == ImageFileStatus.Failed).ToList();
        logger.LogInformation("Images directory {Directory} processed: {Imported} imported, {Unchanged} unchanged, {Failed} failed",
            options.Directory, results.Count(r => r.Status == ImageFileStatus.Imported), results.Count(r => r.Status == ImageFileStatus.Unchanged),
            failed.Count);
        Imported?.Invoke(results);
        ReleaseMemory(results);
        if (failed.Count == 0)
        {
            await notifier.NotifyReadyAsync(cancellationToken).ConfigureAwait(false);
        }
        else
        {
            // The node still starts (the other images are there, as in K3s), but not silently: the log says what failed
            // and why, and `systemctl status` shows it next to "active".
            var summary = FailureSummary(failed);
            logger.LogError("Images directory {Directory}: {Summary}", options.Directory, summary);
            await notifier.NotifyAsync($"READY=1\nSTATUS={summary.ReplaceLineEndings(" ")}", cancellationToken).ConfigureAwait(false);
        }

        if (!Watch)
        {
            return;
        }

        try
        {
            await watcher.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        // However the watcher ended on the stop request (cancelled mid-wait, or between passes), systemd hears it.
        if (cancellationToken.IsCancellationRequested)
        {
            await notifier.NotifyStoppingAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// An import is a burst (1 MiB transfer buffers, gRPC streams, archive metadata) and the agent then idles for
    /// days: after a pass that imported something, a compacting collection gives the heap back to the OS instead
    /// of keeping the burst's high-water mark resident (it took idle RSS from ~100 MiB towards the 60 MiB goal).
    /// </summary>
    private static void ReleaseMemory(IReadOnlyList<ImageFileResult> results)
    {
        if (results.Any(r => r.Status != ImageFileStatus.Unchanged))
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
    }
}
