using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Bundles.Transfer;
using Airlock.Content;
using Airlock.Node.Containerd;
using Airlock.Oci;
using Airlock.Remote;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Node.ImagesDirectory;

/// <summary>What became of one file of the images directory.</summary>
public enum ImageFileStatus
{
    /// <summary>Every image in it is in containerd now.</summary>
    Imported,

    /// <summary>Unchanged since the import <c>.cache.json</c> records; not read again.</summary>
    Unchanged,

    /// <summary>Corrupt, truncated, unreadable or (for <c>.txt</c>) some image could not be pulled.</summary>
    Failed,
}

/// <summary>One file processed: the images it gave containerd and, when it failed, why.</summary>
public sealed record ImageFileResult(string File, IReadOnlyList<string> Images, ImageFileStatus Status, string? Error);

/// <summary>Where the images directory is and how its images reach containerd.</summary>
public sealed record ImagesDirectoryOptions
{
    public required string Directory { get; init; }

    /// <summary>
    /// The directory was named explicitly (<c>--images-dir</c>), so a missing one is a mistake to report (start-up
    /// fails), not a directory to create: an agent pointed at a typo would otherwise import nothing and say it is ready.
    /// </summary>
    public bool MustExist { get; init; }

    /// <summary>
    /// How <c>.txt</c> lists are pulled: the caller's registry client, with registries.yaml mirrors, TLS and
    /// credentials applied (default: plain <see cref="RemoteImageStore"/> with default options).
    /// </summary>
    public RegistryConnector Registry { get; init; } = new(
        reference => RemoteImageStore.Create(reference, new RemoteOptions()),
        reference => RemoteImageStore.Create(reference, new RemoteOptions()));

    public ContainerdImportOptions Import { get; init; } = new();

    public ArchiveLimits Limits { get; init; } = new();

    /// <summary>
    /// Honour and update <c>.cache.json</c> when it exists (K3s's opt-in: <c>touch</c> it to skip unchanged files across
    /// restarts). Within one run, files already imported and unchanged are skipped either way.
    /// </summary>
    public bool UseCache { get; init; } = true;

    /// <summary>
    /// Keep images whose file is gone from the directory (<c>--keep-removed-images</c>). By default, after every pass, an
    /// image this directory imported whose file was removed (or no longer holds it: a replaced tarball) is removed from
    /// containerd — which unpins it and lets containerd's garbage collection free its content — unless a container uses it.
    /// </summary>
    public bool KeepRemovedImages { get; init; }

    public ILogger Logger { get; init; } = NullLogger.Instance;
}

/// <summary>
/// K3s's air-gap "manual method": every image archive (docker-archive or OCI layout, any compression, all
/// platforms) and every <c>.txt</c> list of references under the images directory is imported into
/// containerd as pinned images. A bad file is logged with its name and skipped; the others still go in.
/// </summary>
public sealed class ImagesDirectoryImporter(ContainerdClient client, ImagesDirectoryOptions options)
{
    // Case sensitive, as K3s matches them.
    private static readonly string[] ArchiveExtensions = [".tar", ".tar.lz4", ".tar.bz2", ".tbz", ".tar.gz", ".tgz", ".tar.zst", ".tzst"];
    private const string ListExtension = ".txt";

    private readonly SemaphoreSlim _running = new(1, 1);

    // What this process imported (seeded from .cache.json when present): later watcher passes skip unchanged files
    // whether or not the cache is persisted, as K3s's in-memory file map does.
    private Dictionary<string, CachedImageFile>? _known;

    // Set once containerd answers that it has no CRI plugin (disabled in its config).
    private bool _criUnavailable;

    /// <summary>Whether K3s would import this file name (its extension, case sensitive).</summary>
    public static bool IsImageFile(string path)
    {
        var name = Path.GetFileName(path);
        return name.EndsWith(ListExtension, StringComparison.Ordinal) || ArchiveExtensions.Any(e => name.EndsWith(e, StringComparison.Ordinal));
    }

    /// <summary>
    /// Waits for an import in progress to finish, then holds back further imports until the returned handle is
    /// disposed: what a containerd restart needs so it never cuts an import in half.
    /// </summary>
    public async Task<IDisposable> PauseAsync(CancellationToken cancellationToken)
    {
        await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Pause(_running);
    }

    /// <summary>Holds back imports at once when none is in progress; null when one is (then <see cref="PauseAsync"/> waits for it).</summary>
    public IDisposable? TryPause() => _running.Wait(0) ? new Pause(_running) : null;

    /// <summary>Processes the whole directory once; runs are serialised so a watcher and a start-up scan never overlap.</summary>
    public async Task<IReadOnlyList<ImageFileResult>> ImportAsync(CancellationToken cancellationToken)
    {
        await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await ImportAllAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _running.Release();
        }
    }

    private async Task<IReadOnlyList<ImageFileResult>> ImportAllAsync(CancellationToken cancellationToken)
    {
        var results = new List<ImageFileResult>();
        if (!Directory.Exists(options.Directory))
        {
            options.Logger.LogInformation("Images directory {Directory} does not exist; nothing to import", options.Directory);
            return results;
        }

        var persist = options.UseCache && ImagesDirectoryCache.Exists(options.Directory);
        _known ??= persist
            ? await ImagesDirectoryCache.ReadAsync(options.Directory, cancellationToken).ConfigureAwait(false)
            : new Dictionary<string, CachedImageFile>(StringComparer.Ordinal);
        var cache = _known;
        var files = Directory.EnumerateFiles(options.Directory, "*", SearchOption.AllDirectories)
            .Where(IsImageFile)
            .Order(StringComparer.Ordinal)
            .ToList();
        var changed = false;
        foreach (var path in files)
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                // Gone since the listing (moved away mid-scan); a watcher pass will see whatever replaced it.
                continue;
            }

            // Taken before reading: a file rewritten during its import must not be cached as its new self.
            var seen = new CachedImageFile { Size = info.Length, ModifiedTime = info.LastWriteTimeUtc };
            if (ImagesDirectoryCache.IsUnchanged(cache.GetValueOrDefault(path), info))
            {
                results.Add(new ImageFileResult(path, cache[path].Images, ImageFileStatus.Unchanged, null));
                continue;
            }

            var result = await ImportFileAsync(path, cancellationToken).ConfigureAwait(false);
            results.Add(result);
            if (result.Status == ImageFileStatus.Imported)
            {
                cache[path] = seen with { Images = result.Images };
                changed = true;
            }
            else if (cache.Remove(path))
            {
                changed = true;
            }
        }

        // Files gone from the directory leave the cache too.
        var present = files.ToHashSet(StringComparer.Ordinal);
        foreach (var gone in cache.Keys.Where(k => !present.Contains(k)).ToList())
        {
            cache.Remove(gone);
            changed = true;
        }

        if (persist && changed)
        {
            await ImagesDirectoryCache.WriteAsync(options.Directory, cache, cancellationToken).ConfigureAwait(false);
        }

        if (!options.KeepRemovedImages)
        {
            await PruneAsync(results, cancellationToken).ConfigureAwait(false);
        }

        return results;
    }

    /// <summary>
    /// Removes the image records this directory created (<see cref="ContainerdLabels.ImagesFile"/>) that no file of this
    /// pass holds any more: their file is gone, or was replaced by one without them. A file that failed this pass keeps
    /// its images (what it holds is unknown), and so does an image a container was made from.
    /// </summary>
    private async Task PruneAsync(IReadOnlyList<ImageFileResult> results, CancellationToken cancellationToken)
    {
        var directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.Directory)) + Path.DirectorySeparatorChar;
        var wanted = results.SelectMany(r => r.Images).ToHashSet(StringComparer.Ordinal);
        var failedFiles = results.Where(r => r.Status == ImageFileStatus.Failed).Select(r => Path.GetFullPath(r.File)).ToHashSet(StringComparer.Ordinal);
        try
        {
            var images = await client.Images.ListAsync(null, cancellationToken).ConfigureAwait(false);
            var stale = images.Where(i => i.Labels.TryGetValue(ContainerdLabels.ImagesFile, out var file)
                    && file.StartsWith(directory, StringComparison.Ordinal) && !failedFiles.Contains(file) && !wanted.Contains(i.Name))
                .ToList();
            if (stale.Count == 0)
            {
                return;
            }

            // A container names the image it was made from. The CRI may name the image's id or digest record instead
            // (sha256:…, repo@sha256:…), so such a record with the same target counts as this image too: without the
            // name, a pod restarting with imagePullPolicy IfNotPresent would try to pull it.
            var containers = await client.Containers.ListAsync(cancellationToken).ConfigureAwait(false);
            var byDigest = images.Where(i => i.Name.Contains("sha256:", StringComparison.Ordinal))
                .ToDictionary(i => i.Name, i => i.Target.Digest, StringComparer.Ordinal);
            foreach (var image in stale)
            {
                var file = image.Labels[ContainerdLabels.ImagesFile];
                var user = containers.FirstOrDefault(c => c.Image == image.Name || (byDigest.TryGetValue(c.Image, out var target) && target == image.Target.Digest));
                if (user is not null)
                {
                    options.Logger.LogInformation("Keeping image {Image} from {File}, which is gone from the images directory: container {Container} uses it",
                        image.Name, file, user.Id);
                    continue;
                }

                await client.Images.DeleteAsync(image.Name, cancellationToken).ConfigureAwait(false);
                options.Logger.LogInformation("Removed image {Image}: {File} no longer holds it (unpinned; containerd's garbage collection frees its content)",
                    image.Name, file);
            }
        }
        catch (ContainerdException ex)
        {
            // The imports stand; the next pass tries again.
            options.Logger.LogWarning("Could not remove the images of files gone from {Directory}: {Error}", options.Directory, ex.Message);
        }
    }

    private async Task<ImageFileResult> ImportFileAsync(string path, CancellationToken cancellationToken)
    {
        var images = new List<string>();
        try
        {
            // Every image record says which file it came from, so it can go when the file goes.
            var fromFile = new Dictionary<string, string>(options.Import.ImageLabels, StringComparer.Ordinal) { [ContainerdLabels.ImagesFile] = Path.GetFullPath(path) };
            var target = new ContainerdImageTarget(client, options.Import with { ImageLabels = fromFile });
            await using (target.ConfigureAwait(false))
            {
                string? error = path.EndsWith(ListExtension, StringComparison.Ordinal)
                    ? await PullListAsync(path, target, fromFile, images, cancellationToken).ConfigureAwait(false)
                    : await ImportArchiveAsync(path, target, images, cancellationToken).ConfigureAwait(false);
                if (error is not null)
                {
                    options.Logger.LogWarning("Images file {File} imported only in part: {Error}", path, error);
                    return new ImageFileResult(path, images, ImageFileStatus.Failed, error);
                }
            }

            options.Logger.LogInformation("Imported {Count} images from {File}", images.Count, path);
            return new ImageFileResult(path, images, ImageFileStatus.Imported, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // One bad file must not stop the node: log it by name and go on with the rest.
            options.Logger.LogError("Skipping images file {File}: {Error}", path, ex.Message);
            return new ImageFileResult(path, images, ImageFileStatus.Failed, ex.Message);
        }
    }

    private async Task<string?> ImportArchiveAsync(string path, IImageTarget target, List<string> images, CancellationToken cancellationToken)
    {
        var source = await ArchiveSource.OpenAsync(path, options.Limits, cancellationToken).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            if (source.Entries.Count == 0)
            {
                throw new BundleFormatException(path, "index.json", "archive holds no images");
            }

            var unnamed = new List<string>();
            foreach (var entry in source.Entries)
            {
                var name = OciLayoutStore.NameOf(entry);
                if (name is null && await source.IsReferrerAsync(entry, cancellationToken).ConfigureAwait(false))
                {
                    continue; // a signature or SBOM saved with its image: not an image of its own
                }

                if (name is null || !OciLayoutStore.IsFullReference(name) || !ImageReference.TryParse(name, out var reference))
                {
                    // containerd names images by reference; an entry with no name (or a bare tag) has nothing to be called.
                    unnamed.Add(name is null ? $"{entry.Digest} (no name)" : $"{entry.Digest} (named only \"{name}\")");
                    options.Logger.LogWarning("Image {Digest} in {File} has no image name ({Name}); not imported", entry.Digest, path, name ?? "none");
                    continue;
                }

                await ImageGraph.CopyAsync(source, target, entry, new CopyOptions { Reference = reference.ToString() }, null, cancellationToken).ConfigureAwait(false);
                images.Add(ContainerdName(reference));
            }

            return unnamed.Count == 0 ? null
                : $"{unnamed.Count} of its images cannot be named in containerd: {string.Join(", ", unnamed)}; save them with a full name "
                    + "(airlock images save --name REGISTRY/REPOSITORY:TAG, or skopeo copy … oci-archive:FILE:REGISTRY/REPOSITORY:TAG)";
        }
    }

    private async Task<string?> PullListAsync(string path, IImageTarget target, IReadOnlyDictionary<string, string> labels, List<string> images,
        CancellationToken cancellationToken)
    {
        var errors = new List<string>();
        var lines = await File.ReadAllLinesAsync(path, cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            try
            {
                if (!ImageReference.TryParse(line, out var reference, out var parseError))
                {
                    throw new FormatException($"line {i + 1}: \"{line}\" is not an image reference ({parseError})");
                }

                var name = ContainerdName(reference);
                if (await client.Images.GetAsync(name, cancellationToken).ConfigureAwait(false) is { } present)
                {
                    // As K3s: an image already in containerd is not pulled again, only pinned.
                    await client.Images.PutAsync(name, present.Target, labels, cancellationToken).ConfigureAwait(false);
                }
                else if (!await PullWithCriAsync(name, labels, cancellationToken).ConfigureAwait(false))
                {
                    var source = options.Registry.OpenSource(reference);
                    await using (source.ConfigureAwait(false))
                    {
                        var root = await source.ResolveAsync(reference.Identifier, cancellationToken).ConfigureAwait(false);
                        await ImageGraph.CopyAsync(source, target, root, new CopyOptions { Reference = reference.ToString() }, null, cancellationToken).ConfigureAwait(false);
                    }
                }

                images.Add(name);
                options.Logger.LogInformation("Pulled {Image} listed in {File}", name, path);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                options.Logger.LogError("Could not pull {Image} listed in {File}: {Error}", line, path, ex.Message);
                errors.Add($"{line}: {ex.Message}");
            }
        }

        return errors.Count == 0 ? null : string.Join("; ", errors);
    }

    /// <summary>
    /// Pulls through containerd's CRI image service, as K3s pulls <c>.txt</c> lists: containerd applies the rendered
    /// hosts.toml (mirrors, the node mirror's rewrites, TLS) and config.toml's auth as they are at that moment, so a
    /// registries.yaml changed since start is followed. False when this containerd has no CRI (or the import is
    /// not into the CRI's namespace): the caller pulls with its own client instead.
    /// </summary>
    private async Task<bool> PullWithCriAsync(string name, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        if (_criUnavailable || client.Namespace != ContainerdClient.DefaultNamespace)
        {
            return false;
        }

        try
        {
            await client.Cri.PullImageAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.Unimplemented)
        {
            _criUnavailable = true;
            options.Logger.LogWarning("containerd serves no CRI image service; .txt lists are pulled with Airlock's own client, which applies registries.yaml configs but not its mirrors");
            return false;
        }

        var pulled = await client.Images.GetAsync(name, cancellationToken).ConfigureAwait(false)
            ?? throw new ContainerdException("cri.pull " + name, StatusCode.NotFound, "containerd reported the pull done but holds no image of that name");
        await client.Images.PutAsync(name, pulled.Target, labels, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private sealed class Pause(SemaphoreSlim running) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                running.Release();
            }
        }
    }

    // The name the image record gets: ContainerdImageTarget tags an untagged reference :latest, as containerd does.
    private static string ContainerdName(ImageReference reference) =>
        (reference is { Tag: null, Digest: null } ? reference with { Tag = "latest" } : reference).ToString();
}
