using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Microsoft.Extensions.Logging;

namespace Airlock.Content;

/// <summary>What one collection found and removed (or, in a dry run, would remove).</summary>
public sealed record GarbageCollectionResult(
    IReadOnlyList<Digest> DeletedBlobs,
    long DeletedBytes,
    IReadOnlyList<(string Repository, Digest Digest)> DeletedLinks,
    IReadOnlyList<string> DeletedUploads,
    int MarkedBlobs,
    bool DryRun);

/// <summary>
/// Online mark and sweep. Mark: every manifest revision of every repository, with its config, layers and
/// (for indexes) child manifests. Sweep: blobs nobody marked, repository links to blobs that repository's
/// manifests do not reference, and abandoned upload sessions, but only those older than the grace period,
/// so a push in flight (blobs up, manifest not yet put) is never broken. The registry keeps serving:
/// each deletion re-checks under <see cref="GarbageCollectionGuard"/>, and digests referenced during the
/// mark are kept.
/// </summary>
public sealed class GarbageCollector(RegistryStorage storage, TimeSpan grace, ILogger logger)
{
    // Revisions hold only manifests the registry accepted; the cap only guards against a damaged store.
    private const int MaxManifestBytes = 256 << 20;

    public async Task<GarbageCollectionResult> CollectAsync(bool dryRun, CancellationToken cancellationToken)
    {
        var cutoff = storage.Time.GetUtcNow() - grace;
        var guard = storage.Guard;
        var duringMark = guard.BeginMark();
        try
        {
            var marked = new HashSet<Digest>();
            var perRepository = new Dictionary<string, HashSet<Digest>>(StringComparer.Ordinal);
            foreach (var repository in storage.Repositories.ListRepositories())
            {
                var referenced = new HashSet<Digest>();
                foreach (var manifest in storage.Repositories.ListManifestRevisions(repository))
                {
                    referenced.Add(manifest);
                    var document = await ReadManifestAsync(manifest, storage.Repositories.ManifestMediaType(repository, manifest), cancellationToken).ConfigureAwait(false);
                    if (document is null)
                    {
                        continue;
                    }

                    foreach (var child in document.Children)
                    {
                        referenced.Add(child.Digest);
                    }
                }

                perRepository[repository] = referenced;
                marked.UnionWith(referenced);
            }

            var deletedBlobs = new List<Digest>();
            long deletedBytes = 0;
            foreach (var (digest, lastWrite, size) in storage.Blobs.List().ToList())
            {
                if (marked.Contains(digest) || lastWrite > cutoff)
                {
                    continue;
                }

                using (await guard.EnterSweepAsync(cancellationToken).ConfigureAwait(false))
                {
                    // Re-check under the guard: referenced or touched since the listing means in use.
                    if (duringMark.ContainsKey(digest) || LastWrite(storage.Layout.Blob(digest)) is not { } current || current > cutoff)
                    {
                        continue;
                    }

                    if (!dryRun)
                    {
                        storage.Blobs.Delete(digest);
                    }
                }

                deletedBlobs.Add(digest);
                deletedBytes += size;
            }

            var deletedLinks = new List<(string, Digest)>();
            foreach (var (repository, referenced) in perRepository)
            {
                foreach (var (digest, lastWrite) in storage.Repositories.ListBlobLinks(repository).ToList())
                {
                    if (referenced.Contains(digest) || lastWrite > cutoff)
                    {
                        continue;
                    }

                    using (await guard.EnterSweepAsync(cancellationToken).ConfigureAwait(false))
                    {
                        if (duringMark.ContainsKey(digest) || LastWrite(storage.Layout.BlobLink(repository, digest)) is not { } current || current > cutoff)
                        {
                            continue;
                        }

                        if (!dryRun)
                        {
                            storage.Repositories.UnlinkBlob(repository, digest);
                        }
                    }

                    deletedLinks.Add((repository, digest));
                }
            }

            var deletedUploads = new List<string>();
            foreach (var (id, lastActivity) in storage.Uploads.List().ToList())
            {
                if (lastActivity > cutoff)
                {
                    continue;
                }

                if (!dryRun)
                {
                    await storage.Uploads.DeleteAsync(id).ConfigureAwait(false);
                }

                deletedUploads.Add(id);
            }

            logger.LogInformation(
                "Garbage collection {Mode}: {Marked} blobs in use, {Blobs} blobs ({Bytes} bytes), {Links} links and {Uploads} upload sessions removed",
                dryRun ? "dry run" : "done", marked.Count, deletedBlobs.Count, deletedBytes, deletedLinks.Count, deletedUploads.Count);
            return new GarbageCollectionResult(deletedBlobs, deletedBytes, deletedLinks, deletedUploads, marked.Count, dryRun);
        }
        finally
        {
            guard.EndMark();
        }
    }

    private async Task<ManifestDocument?> ReadManifestAsync(Digest digest, string? mediaType, CancellationToken cancellationToken)
    {
        if (await storage.Blobs.ReadSmallAsync(digest, MaxManifestBytes, cancellationToken).ConfigureAwait(false) is not { } content)
        {
            return null;
        }

        try
        {
            return ManifestDocument.Parse(content, mediaType);
        }
        catch (ManifestFormatException ex)
        {
            // Sweeping without knowing this manifest's children could delete blobs it needs.
            throw new InvalidOperationException($"stored manifest {digest} cannot be parsed, so garbage collection stops without deleting anything: {ex.Message}", ex);
        }
    }

    private static DateTimeOffset? LastWrite(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero) : null;
    }
}
