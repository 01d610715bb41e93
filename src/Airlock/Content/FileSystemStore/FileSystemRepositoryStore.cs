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
    public bool Exists(string repository) => Directory.Exists(layout.Repository(repository));

    public bool HasBlobLink(string repository, Digest digest) => File.Exists(layout.BlobLink(repository, digest));

    public void LinkBlob(string repository, Digest digest) => TouchFile(layout.BlobLink(repository, digest));

    public bool UnlinkBlob(string repository, Digest digest) => DeleteFile(layout.BlobLink(repository, digest));

    public IEnumerable<(Digest Digest, DateTimeOffset LastWrite)> ListBlobLinks(string repository) =>
        ListDigestFiles(layout.BlobLinksDirectory(repository)).Select(f => (f.Digest, f.LastWrite));

    public string? ManifestMediaType(string repository, Digest digest)
    {
        try
        {
            return File.ReadAllText(layout.Revision(repository, digest));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public void PutManifestRevision(string repository, Digest digest, string mediaType) =>
        AtomicFile.Write(layout.Revision(repository, digest), Encoding.UTF8.GetBytes(mediaType));

    public bool DeleteManifestRevision(string repository, Digest digest) => DeleteFile(layout.Revision(repository, digest));

    public IEnumerable<Digest> ListManifestRevisions(string repository) =>
        ListDigestFiles(layout.RevisionsDirectory(repository)).Select(f => f.Digest);

    public Digest? ResolveTag(string repository, string tag)
    {
        try
        {
            return Digest.TryParse(File.ReadAllText(layout.Tag(repository, tag)).Trim(), out var digest) ? digest : null;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public void SetTag(string repository, string tag, Digest digest) =>
        AtomicFile.Write(layout.Tag(repository, tag), Encoding.UTF8.GetBytes(digest.ToString()));

    public bool DeleteTag(string repository, string tag) => DeleteFile(layout.Tag(repository, tag));

    public IReadOnlyList<string>? ListTags(string repository)
    {
        if (!Exists(repository))
        {
            return null;
        }

        var directory = new DirectoryInfo(layout.TagsDirectory(repository));
        if (!directory.Exists)
        {
            return [];
        }

        var tags = directory.EnumerateFiles().Select(f => f.Name).Where(ImageReference.IsValidTag).ToList();
        tags.Sort(StringComparer.Ordinal);
        return tags;
    }

    public IReadOnlyList<string> ListRepositories()
    {
        var names = new List<string>();
        var root = new DirectoryInfo(layout.RepositoriesDirectory);
        if (root.Exists)
        {
            Collect(root, string.Empty, names);
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    public void AddReferrer(string repository, Digest subject, Descriptor referrer) =>
        AtomicFile.Write(layout.Referrer(repository, subject, referrer.Digest), JsonSerializer.SerializeToUtf8Bytes(referrer, StoreJsonContext.Default.Descriptor));

    public void RemoveReferrer(string repository, Digest subject, Digest referrer) => DeleteFile(layout.Referrer(repository, subject, referrer));

    public IReadOnlyList<Descriptor> ListReferrers(string repository, Digest subject)
    {
        var directory = new DirectoryInfo(layout.ReferrersDirectory(repository, subject));
        if (!directory.Exists)
        {
            return [];
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
        return result;
    }

    public void MarkAuthenticatedOnly(string repository)
    {
        var path = layout.AuthenticatedOnly(repository);
        if (!File.Exists(path))
        {
            AtomicFile.Write(path, []);
        }
    }

    public IReadOnlyList<string> ListAuthenticatedOnly()
    {
        var names = new List<string>();
        var root = new DirectoryInfo(layout.RepositoriesDirectory);
        if (root.Exists)
        {
            CollectMarked(root, string.Empty, names);
        }

        names.Sort(StringComparer.Ordinal);
        return names;
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
