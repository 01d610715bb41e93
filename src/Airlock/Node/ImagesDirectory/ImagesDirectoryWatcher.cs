using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Node.ImagesDirectory;

/// <summary>
/// Re-runs the importer when files under the images directory are added, changed or removed, once no change has
/// been seen for the debounce time (K3s waits about 2 s), so an archive still being copied in is not read
/// half-written. Each run is a full scan; <c>.cache.json</c> makes the unchanged files cost nothing.
/// </summary>
public sealed class ImagesDirectoryWatcher(ImagesDirectoryImporter importer, string directory, TimeProvider timeProvider, ILogger? logger = null)
    : IDisposable
{
    public static readonly TimeSpan DefaultDebounce = TimeSpan.FromSeconds(2);

    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly ChangeDebouncer _debouncer = new(timeProvider);
    private FileSystemWatcher? _watcher;

    public TimeSpan Debounce { get; init; } = DefaultDebounce;

    /// <summary>Called after every import the watcher ran.</summary>
    public Action<IReadOnlyList<ImageFileResult>>? Imported { get; init; }

    /// <summary>Called with the path of every change recorded (after it counts for the debounce).</summary>
    internal Action<string>? ChangeRecorded { get; init; }

    /// <summary>
    /// Starts recording changes. Call it before the start-up pass, so a file copied in while that pass runs
    /// is not missed; <see cref="RunAsync"/> imports what was recorded. The directory must exist.
    /// </summary>
    public void Start()
    {
        if (_watcher is not null)
        {
            return;
        }

        var watcher = new FileSystemWatcher(directory)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
        };
        watcher.Created += (_, e) => OnChange(e.FullPath);
        watcher.Changed += (_, e) => OnChange(e.FullPath);
        watcher.Renamed += (_, e) => OnChange(e.FullPath);
        // A file (or a folder of them) taken away: its images may now be pruned.
        watcher.Deleted += (_, e) => OnChange(e.FullPath, deleted: true);
        watcher.Error += (_, e) =>
        {
            // Events were lost (buffer overflow): a full scan catches up with whatever they were.
            _logger.LogWarning("Images directory watcher lost events: {Error}", e.GetException().Message);
            Signal();
        };
        watcher.EnableRaisingEvents = true;
        _watcher = watcher;
    }

    /// <summary>Imports recorded changes until cancelled (starts recording first if <see cref="Start"/> was not called).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Start();
        while (!cancellationToken.IsCancellationRequested)
        {
            await _debouncer.WaitAsync(Debounce, cancellationToken).ConfigureAwait(false);
            var results = await importer.ImportAsync(cancellationToken).ConfigureAwait(false);
            Imported?.Invoke(results);
        }
    }

    public void Dispose() => _watcher?.Dispose();

    private void OnChange(string path, bool deleted = false)
    {
        // The cache and its temporary file are ours; directories matter because files may be moved in with them.
        var name = Path.GetFileName(path);
        if (name.StartsWith(ImagesDirectoryCache.FileName, StringComparison.Ordinal))
        {
            return;
        }

        if (ImagesDirectoryImporter.IsImageFile(path) || Directory.Exists(path) || deleted)
        {
            Signal();
            ChangeRecorded?.Invoke(path);
        }
    }

    /// <summary>Asks for a full pass after the debounce time, as if a file had changed (e.g. after containerd came back).</summary>
    public void RequestScan() => Signal();

    private void Signal() => _debouncer.Signal();
}
