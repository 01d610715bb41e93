using System.IO.Enumeration;
using System.Text;
using System.Text.Json;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Content.FileSystemStore;

/// <summary>
/// Repositories as folders of small files: link files name the blobs a repository may read, a revision
/// file holds a manifest's media type, a tag file holds a digest (written by temp file + rename, so a
/// reader sees the old or the new digest, never half of one). Listings are pages of the
/// <see cref="RepositoryIndex"/>, checked against the tree; every write that can create a repository or a tag,
/// and every deletion of one, goes through the index so it stays a superset of the tree.
/// </summary>
public sealed class FileSystemRepositoryStore : IRepositoryStore
{
    private readonly StoreLayout _layout;
    private readonly TimeProvider _time;
    private readonly RepositoryIndex _index;

    internal FileSystemRepositoryStore(StoreLayout layout, TimeProvider time, RepositoryIndex index)
    {
        _layout = layout;
        _time = time;
        _index = index;
    }

    /// <summary>Whether the tree holds the repository (never the index: existence decides what a client may be told).</summary>
    public ValueTask<bool> ExistsAsync(string repository, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_layout.IsRepository(repository));

    public ValueTask<BlobLink?> GetBlobLinkAsync(string repository, Digest digest, CancellationToken cancellationToken)
    {
        var info = new FileInfo(_layout.BlobLink(repository, digest));
        return ValueTask.FromResult<BlobLink?>(info.Exists ? new BlobLink(digest, new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero)) : null);
    }

    public async ValueTask LinkBlobAsync(string repository, Digest digest, CancellationToken cancellationToken)
    {
        var path = _layout.BlobLink(repository, digest);
        await using var write = await EnterToCreateAsync(repository, tag: null, cancellationToken).ConfigureAwait(false);
        TouchFile(path);
    }

    public ValueTask<bool> UnlinkBlobAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        ValueTask.FromResult(DeleteFile(_layout.BlobLink(repository, digest)));

    public IAsyncEnumerable<BlobLink> ListBlobLinksAsync(string repository, CancellationToken cancellationToken) =>
        ListDigestFiles(_layout.BlobLinksDirectory(repository)).Select(f => new BlobLink(f.Digest, f.LastWrite)).ToAsyncEnumerable();

    public ValueTask<string?> ManifestMediaTypeAsync(string repository, Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            return ValueTask.FromResult<string?>(File.ReadAllText(_layout.Revision(repository, digest)));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return ValueTask.FromResult<string?>(null);
        }
    }

    public async ValueTask PutManifestRevisionAsync(string repository, Digest digest, string mediaType, CancellationToken cancellationToken)
    {
        var path = _layout.Revision(repository, digest);
        await using var write = await EnterToCreateAsync(repository, tag: null, cancellationToken).ConfigureAwait(false);
        AtomicFile.Write(path, Encoding.UTF8.GetBytes(mediaType));
    }

    public ValueTask<bool> DeleteManifestRevisionAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        ValueTask.FromResult(DeleteFile(_layout.Revision(repository, digest)));

    public IAsyncEnumerable<Digest> ListManifestRevisionsAsync(string repository, CancellationToken cancellationToken) =>
        ListDigestFiles(_layout.RevisionsDirectory(repository)).Select(f => f.Digest).ToAsyncEnumerable();

    public ValueTask<Digest?> ResolveTagAsync(string repository, string tag, CancellationToken cancellationToken)
    {
        try
        {
            return ValueTask.FromResult<Digest?>(Digest.TryParse(File.ReadAllText(_layout.Tag(repository, tag)).Trim(), out var digest) ? digest : null);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return ValueTask.FromResult<Digest?>(null);
        }
    }

    public async ValueTask SetTagAsync(string repository, string tag, Digest digest, CancellationToken cancellationToken)
    {
        var path = _layout.Tag(repository, tag);
        await using var write = await EnterToCreateAsync(repository, tag, cancellationToken).ConfigureAwait(false);
        AtomicFile.Write(path, Encoding.UTF8.GetBytes(digest.ToString()));
    }

    public async ValueTask<bool> DeleteTagAsync(string repository, string tag, CancellationToken cancellationToken)
    {
        var path = _layout.Tag(repository, tag);
        await using var write = await _index.EnterAsync(repository, exclusive: true, cancellationToken).ConfigureAwait(false);
        var deleted = DeleteFile(path);
        await write.LostTagAsync(tag, cancellationToken).ConfigureAwait(false);
        return deleted;
    }

    // Adding, renaming or removing an entry changes its folder's time, so three folders' times say it all.
    public ValueTask<DateTimeOffset?> LastChangeAsync(string repository, CancellationToken cancellationToken)
    {
        if (!_layout.IsRepository(repository))
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

        Consider(new DirectoryInfo(_layout.TagsDirectory(repository)));
        foreach (var folder in new[] { _layout.RevisionsDirectory(repository), _layout.BlobLinksDirectory(repository) })
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

    public async ValueTask<ListingPage?> ListTagsAsync(string repository, string? last, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return _layout.IsRepository(repository) ? await _index.ListTagsAsync(repository, last, limit, cancellationToken).ConfigureAwait(false) : null;
    }

    public ValueTask<ListingPage> ListRepositoriesAsync(string? last, int limit, CancellationToken cancellationToken) =>
        _index.ListRepositoriesAsync(last, limit, cancellationToken);

    /// <remarks>
    /// Only the repository's own entries go; its folder stays, since a nested repository may be being created in it
    /// right now (under another lock), and a folder without entries of its own is no repository.
    /// </remarks>
    public async ValueTask<bool> DeleteRepositoryIfEmptyAsync(string repository, CancellationToken cancellationToken)
    {
        var folder = _layout.Repository(repository);
        await using var write = await _index.EnterAsync(repository, exclusive: true, cancellationToken).ConfigureAwait(false);
        var deleted = false;
        if (_layout.IsRepository(repository))
        {
            if (!IsEmpty(folder))
            {
                return false;
            }

            foreach (var entry in StoreLayout.RepositoryEntries)
            {
                var path = Path.Combine(folder, entry);
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
            }

            deleted = true;
        }

        await write.LostRepositoryAsync(cancellationToken).ConfigureAwait(false);
        return deleted;
    }

    public ValueTask<ReconciledListings> ReconcileListingsAsync(CancellationToken cancellationToken) => _index.ReconcileAsync(cancellationToken);

    public async ValueTask AddReferrerAsync(string repository, Digest subject, Descriptor referrer, CancellationToken cancellationToken)
    {
        var path = _layout.Referrer(repository, subject, referrer.Digest);
        await using var write = await EnterToCreateAsync(repository, tag: null, cancellationToken).ConfigureAwait(false);
        AtomicFile.Write(path, JsonSerializer.SerializeToUtf8Bytes(referrer, StoreJsonContext.Default.Descriptor));
    }

    public ValueTask RemoveReferrerAsync(string repository, Digest subject, Digest referrer, CancellationToken cancellationToken)
    {
        DeleteFile(_layout.Referrer(repository, subject, referrer));
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<Descriptor>> ListReferrersAsync(string repository, Digest subject, CancellationToken cancellationToken)
    {
        var directory = new DirectoryInfo(_layout.ReferrersDirectory(repository, subject));
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

    public async ValueTask MarkAuthenticatedOnlyAsync(string repository, CancellationToken cancellationToken)
    {
        var path = _layout.AuthenticatedOnly(repository);
        if (!File.Exists(path))
        {
            // Recorded in the index first (the start-up reads the marks from there), then in the tree.
            await using var write = await EnterToCreateAsync(repository, tag: null, cancellationToken, mark: true).ConfigureAwait(false);
            AtomicFile.Write(path, []);
        }
    }

    /// <remarks>
    /// Read from the index, not by walking every repository folder (which made each start-up cost a walk of the store).
    /// The index never misses a mark the tree holds: a mark is recorded before it is written, a damaged or missing
    /// index and one a crashed process may have cut short are rebuilt from the tree (marks included), and an index
    /// written before marks were kept in it has another format and is rebuilt too. A name it holds whose mark never
    /// reached the tree counts as marked until the next collection reconciles it: fail closed.
    /// </remarks>
    public ValueTask<IReadOnlyList<string>> ListAuthenticatedOnlyAsync(CancellationToken cancellationToken) =>
        _index.ListMarkedAsync(cancellationToken);

    /// <summary>
    /// No file under the repository's own folders and no mark; anything else starting with <c>_</c> (written by
    /// something newer) counts as content. Hidden files are temp files a crashed write left, not content.
    /// </summary>
    private static bool IsEmpty(string folder)
    {
        foreach (var (entry, isDirectory) in new FileSystemEnumerable<(string, bool)>(folder, static (ref entry) => (entry.FileName.ToString(), entry.IsDirectory)))
        {
            if (!entry.StartsWith('_'))
            {
                continue;
            }

            if (!isDirectory || !StoreLayout.RepositoryEntries.Contains(entry)
                || Directory.EnumerateFiles(Path.Combine(folder, entry), "*", new EnumerationOptions { RecurseSubdirectories = true }).Any())
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Holds the repository for a write that may create it, <paramref name="tag"/> or its mark, recorded in the index before the tree gets them.</summary>
    private async ValueTask<RepositoryIndex.RepositoryWrite> EnterToCreateAsync(string repository, string? tag, CancellationToken cancellationToken, bool mark = false)
    {
        var write = await _index.EnterAsync(repository, exclusive: false, cancellationToken).ConfigureAwait(false);
        try
        {
            await write.WillHoldAsync(tag, mark, cancellationToken).ConfigureAwait(false);
            return write;
        }
        catch
        {
            await write.DisposeAsync().ConfigureAwait(false);
            throw;
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

        File.SetLastWriteTimeUtc(path, _time.GetUtcNow().UtcDateTime);
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
