using System.Text;
using System.Text.Json;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// Repositories as folders of small files: link files name the blobs a repository may read, a revision
/// file holds a manifest's media type, a tag file holds a digest (written by temp file + rename, so a
/// reader sees the old or the new digest, never half of one).
/// </summary>
public sealed class FileSystemRepositoryStore(StoreLayout layout, TimeProvider time) : IRepositoryStore
{
    public ValueTask<bool> ExistsAsync(string repository, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Directory.Exists(layout.Repository(repository)));

    public ValueTask<BlobLink?> GetBlobLinkAsync(string repository, Digest digest, CancellationToken cancellationToken)
    {
        var info = new FileInfo(layout.BlobLink(repository, digest));
        return ValueTask.FromResult<BlobLink?>(info.Exists ? new BlobLink(digest, new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero)) : null);
    }

    public ValueTask LinkBlobAsync(string repository, Digest digest, CancellationToken cancellationToken)
    {
        TouchFile(layout.BlobLink(repository, digest));
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> UnlinkBlobAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        ValueTask.FromResult(DeleteFile(layout.BlobLink(repository, digest)));

    public IAsyncEnumerable<BlobLink> ListBlobLinksAsync(string repository, CancellationToken cancellationToken) =>
        ListDigestFiles(layout.BlobLinksDirectory(repository)).Select(f => new BlobLink(f.Digest, f.LastWrite)).ToAsyncEnumerable();

    public ValueTask<string?> ManifestMediaTypeAsync(string repository, Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            return ValueTask.FromResult<string?>(File.ReadAllText(layout.Revision(repository, digest)));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return ValueTask.FromResult<string?>(null);
        }
    }

    public ValueTask PutManifestRevisionAsync(string repository, Digest digest, string mediaType, CancellationToken cancellationToken)
    {
        AtomicFile.Write(layout.Revision(repository, digest), Encoding.UTF8.GetBytes(mediaType));
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> DeleteManifestRevisionAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        ValueTask.FromResult(DeleteFile(layout.Revision(repository, digest)));

    public IAsyncEnumerable<Digest> ListManifestRevisionsAsync(string repository, CancellationToken cancellationToken) =>
        ListDigestFiles(layout.RevisionsDirectory(repository)).Select(f => f.Digest).ToAsyncEnumerable();

    public ValueTask<Digest?> ResolveTagAsync(string repository, string tag, CancellationToken cancellationToken)
    {
        try
        {
            return ValueTask.FromResult<Digest?>(Digest.TryParse(File.ReadAllText(layout.Tag(repository, tag)).Trim(), out var digest) ? digest : null);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return ValueTask.FromResult<Digest?>(null);
        }
    }

    public ValueTask SetTagAsync(string repository, string tag, Digest digest, CancellationToken cancellationToken)
    {
        AtomicFile.Write(layout.Tag(repository, tag), Encoding.UTF8.GetBytes(digest.ToString()));
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> DeleteTagAsync(string repository, string tag, CancellationToken cancellationToken) =>
        ValueTask.FromResult(DeleteFile(layout.Tag(repository, tag)));

    /// <remarks>Reads and sorts the repository's tag folder for every page (an ordered index is issue 15's).</remarks>
    public ValueTask<ListingPage?> ListTagsAsync(string repository, string? last, int limit, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(layout.Repository(repository)))
        {
            return ValueTask.FromResult<ListingPage?>(null);
        }

        var directory = new DirectoryInfo(layout.TagsDirectory(repository));
        if (!directory.Exists)
        {
            return ValueTask.FromResult<ListingPage?>(ListingPage.Slice([], last, limit));
        }

        var tags = directory.EnumerateFiles().Select(f => f.Name).Where(ImageReference.IsValidTag).ToList();
        tags.Sort(StringComparer.Ordinal);
        return ValueTask.FromResult<ListingPage?>(ListingPage.Slice(tags, last, limit));
    }

    // Adding, renaming or removing an entry changes its folder's time, so three folders' times say it all.
    public ValueTask<DateTimeOffset?> LastChangeAsync(string repository, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(layout.Repository(repository)))
        {
            return ValueTask.FromResult<DateTimeOffset?>(null);
        }

        DateTime? newest = null;
        void Consider(DirectoryInfo directory)
        {
            if (directory.Exists && (newest is null || directory.LastWriteTimeUtc > newest))
            {
                newest = directory.LastWriteTimeUtc;
            }
        }

        Consider(new DirectoryInfo(layout.TagsDirectory(repository)));
        foreach (var folder in new[] { layout.RevisionsDirectory(repository), layout.BlobLinksDirectory(repository) })
        {
            var byAlgorithm = new DirectoryInfo(folder);
            if (byAlgorithm.Exists)
            {
                foreach (var algorithm in byAlgorithm.EnumerateDirectories())
                {
                    Consider(algorithm);
                }
            }
        }

        return ValueTask.FromResult<DateTimeOffset?>(newest is { } changed ? new DateTimeOffset(changed, TimeSpan.Zero) : null);
    }

    /// <remarks>Walks and sorts the whole tree for every page (an ordered index is issue 15's).</remarks>
    public ValueTask<ListingPage> ListRepositoriesAsync(string? last, int limit, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        var root = new DirectoryInfo(layout.RepositoriesDirectory);
        if (root.Exists)
        {
            Collect(root, string.Empty, names);
        }

        names.Sort(StringComparer.Ordinal);
        return ValueTask.FromResult(ListingPage.Slice(names, last, limit));
    }

    public ValueTask AddReferrerAsync(string repository, Digest subject, Descriptor referrer, CancellationToken cancellationToken)
    {
        AtomicFile.Write(layout.Referrer(repository, subject, referrer.Digest), JsonSerializer.SerializeToUtf8Bytes(referrer, StoreJsonContext.Default.Descriptor));
        return ValueTask.CompletedTask;
    }

    public ValueTask RemoveReferrerAsync(string repository, Digest subject, Digest referrer, CancellationToken cancellationToken)
    {
        DeleteFile(layout.Referrer(repository, subject, referrer));
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<Descriptor>> ListReferrersAsync(string repository, Digest subject, CancellationToken cancellationToken)
    {
        var directory = new DirectoryInfo(layout.ReferrersDirectory(repository, subject));
        if (!directory.Exists)
        {
            return ValueTask.FromResult<IReadOnlyList<Descriptor>>([]);
        }

        var result = new List<Descriptor>();
        foreach (var file in directory.EnumerateFiles())
        {
            try
            {
                if (JsonSerializer.Deserialize(File.ReadAllBytes(file.FullName), StoreJsonContext.Default.Descriptor) is { } descriptor)
                {
                    result.Add(descriptor);
                }
            }
            catch (Exception ex) when (ex is FileNotFoundException or JsonException)
            {
                // Removed meanwhile, or a torn write from a crash: not a referrer.
            }
        }

        result.Sort((a, b) => string.CompareOrdinal(a.Digest.ToString(), b.Digest.ToString()));
        return ValueTask.FromResult<IReadOnlyList<Descriptor>>(result);
    }

    public ValueTask MarkAuthenticatedOnlyAsync(string repository, CancellationToken cancellationToken)
    {
        var path = layout.AuthenticatedOnly(repository);
        if (!File.Exists(path))
        {
            AtomicFile.Write(path, []);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<string>> ListAuthenticatedOnlyAsync(CancellationToken cancellationToken)
    {
        var names = new List<string>();
        var root = new DirectoryInfo(layout.RepositoriesDirectory);
        if (root.Exists)
        {
            CollectMarked(root, string.Empty, names);
        }

        names.Sort(StringComparer.Ordinal);
        return ValueTask.FromResult<IReadOnlyList<string>>(names);
    }

    // Walks repository name components only (never into _layers and the like, which hold many files).
    private static void CollectMarked(DirectoryInfo directory, string prefix, List<string> names)
    {
        if (prefix.Length > 0 && File.Exists(Path.Combine(directory.FullName, StoreLayout.AuthenticatedOnlyMarker)))
        {
            names.Add(prefix);
        }

        foreach (var child in directory.EnumerateDirectories())
        {
            if (!child.Name.StartsWith('_'))
            {
                CollectMarked(child, prefix.Length == 0 ? child.Name : prefix + "/" + child.Name, names);
            }
        }
    }

    private static void Collect(DirectoryInfo directory, string prefix, List<string> names)
    {
        var isRepository = false;
        foreach (var child in directory.EnumerateDirectories())
        {
            if (child.Name.StartsWith('_'))
            {
                isRepository = true;
                continue;
            }

            Collect(child, prefix.Length == 0 ? child.Name : prefix + "/" + child.Name, names);
        }

        if (isRepository && prefix.Length > 0)
        {
            names.Add(prefix);
        }
    }

    private static IEnumerable<(Digest Digest, DateTimeOffset LastWrite)> ListDigestFiles(string directory)
    {
        var root = new DirectoryInfo(directory);
        if (!root.Exists)
        {
            yield break;
        }

        foreach (var algorithm in root.EnumerateDirectories())
        {
            foreach (var file in algorithm.EnumerateFiles())
            {
                if (StoreLayout.DigestFromPath(algorithm.Name, file.Name) is { } digest)
                {
                    yield return (digest, new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero));
                }
            }
        }
    }

    private void TouchFile(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
        {
        }

        File.SetLastWriteTimeUtc(path, time.GetUtcNow().UtcDateTime);
    }

    private static bool DeleteFile(string path)
    {
        try
        {
            if (!File.Exists(path))
            {
                return false;
            }

            File.Delete(path);
            return true;
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
    }
}
