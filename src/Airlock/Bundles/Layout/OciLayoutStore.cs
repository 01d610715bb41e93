using System.Text.Json;
using Airlock.Content;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Bundles.Layout;

/// <summary>
/// An OCI image layout directory (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/&lt;alg&gt;/&lt;hex&gt;</c>) as
/// both a source and a target. Blobs are written through <see cref="BlobIngest"/> (verified, fsynced, renamed),
/// manifests byte for byte, and <c>index.json</c> is replaced atomically whenever a name is added.
/// </summary>
public sealed class OciLayoutStore : IImageSource, IImageTarget, IReferrerSource
{
    /// <summary>The OCI annotation naming an index entry; skopeo writes the bare tag here.</summary>
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    /// <summary>containerd's annotation with the full image name; <c>ctr import</c> names the image after it.</summary>
    public const string ImageNameAnnotation = "io.containerd.image.name";

    /// <summary>Manifests and indexes are held in memory, so they are capped as registries cap them.</summary>
    public const int MaxManifestSize = 4 << 20;

    private const string IngestFolder = ".airlock-ingest";
    private static readonly byte[] LayoutFile = """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray();

    private readonly SemaphoreSlim _indexLock = new(1, 1);
    private readonly List<Descriptor> _entries;
    private readonly LayoutReferrers _referrers;

    private OciLayoutStore(string root, List<Descriptor> entries)
    {
        Root = root;
        _entries = entries;
        _referrers = new LayoutReferrers(this, () => Entries);
    }

    public string Root { get; }

    /// <summary>The entries of <c>index.json</c> (each a manifest or index with its name annotations).</summary>
    public IReadOnlyList<Descriptor> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>Whether <paramref name="path"/> is an OCI layout directory (has <c>oci-layout</c> and <c>index.json</c>).</summary>
    public static bool IsLayout(string path) =>
        Directory.Exists(path) && File.Exists(Path.Combine(path, "oci-layout")) && File.Exists(Path.Combine(path, "index.json"));

    /// <summary>Opens an existing layout for reading (and adding to).</summary>
    public static OciLayoutStore Open(string root)
    {
        var indexPath = Path.Combine(root, "index.json");
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"OCI layout {root} does not exist");
        }

        if (!File.Exists(indexPath))
        {
            throw new BundleFormatException(root, "index.json", "missing: this is not an OCI image layout");
        }

        return new OciLayoutStore(Path.GetFullPath(root), ReadIndex(root, indexPath));
    }

    /// <summary>Opens the layout at <paramref name="root"/>, creating an empty one if there is none.</summary>
    public static OciLayoutStore Create(string root)
    {
        Directory.CreateDirectory(root);
        if (File.Exists(Path.Combine(root, "index.json")))
        {
            return Open(root);
        }

        var store = new OciLayoutStore(Path.GetFullPath(root), []);
        File.WriteAllBytes(Path.Combine(root, "oci-layout"), LayoutFile);
        store.SaveIndex();
        return store;
    }

    /// <summary>The name an index entry carries: containerd's full image name, else the OCI ref name.</summary>
    public static string? NameOf(Descriptor entry) =>
        entry.Annotations is { } annotations
            ? annotations.GetValueOrDefault(ImageNameAnnotation) ?? annotations.GetValueOrDefault(RefNameAnnotation)
            : null;

    /// <summary>Where the blob with this digest lives; the digest grammar keeps it inside the layout.</summary>
    public string BlobPath(Digest digest) => Path.Combine(Root, "blobs", digest.Algorithm, digest.Encoded);

    public ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Resolve(Entries, reference, Root));

    /// <summary>
    /// The entry of an <c>index.json</c> a reference names: a digest, a containerd or OCI ref name, the same
    /// image under another spelling of its reference, or (empty reference) the only entry.
    /// </summary>
    internal static Descriptor Resolve(IReadOnlyList<Descriptor> entries, string reference, string where)
    {
        if (Digest.TryParse(reference, out var digest))
        {
            return entries.FirstOrDefault(e => e.Digest == digest) ?? throw new ImageNotFoundException($"{where}: no manifest {digest} in index.json");
        }

        var found = entries.FirstOrDefault(e => NameOf(e) == reference
            || e.Annotations?.GetValueOrDefault(RefNameAnnotation) == reference);
        if (found is null && IsFullReference(reference) && ImageReference.TryParse(reference, out var wanted))
        {
            found = entries.FirstOrDefault(e => NameOf(e) is { } name && IsFullReference(name)
                && ImageReference.TryParse(name, out var have) && have == wanted);
        }

        if (found is null && string.IsNullOrEmpty(reference) && entries.Count == 1)
        {
            found = entries[0];
        }

        return found ?? throw new ImageNotFoundException(string.IsNullOrEmpty(reference)
            ? $"{where}: holds {entries.Count} images; name one ({string.Join(", ", entries.Select(NameOf).Where(n => n is not null))})"
            : $"{where}: no image named \"{reference}\"");
    }

    /// <summary>The <c>index.json</c> entries whose manifest has <paramref name="subject"/> as its subject.</summary>
    public ValueTask<IReadOnlyList<Descriptor>> ReferrersAsync(Descriptor subject, CancellationToken cancellationToken) =>
        _referrers.FindAsync(subject, cancellationToken);

    public async ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken)
    {
        if (manifest.Size > MaxManifestSize)
        {
            throw new BundleFormatException(Root, manifest.Digest.ToString(), $"manifest of {manifest.Size} bytes is larger than the {MaxManifestSize} allowed");
        }

        var path = BlobPath(manifest.Digest);
        if (!File.Exists(path))
        {
            throw new BundleFormatException(Root, manifest.Digest.ToString(), "manifest is missing from blobs/");
        }

        var content = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        var actual = Digest.FromHash(manifest.Digest.Algorithm, HashOf(manifest.Digest, content));
        if (actual != manifest.Digest || content.Length != manifest.Size)
        {
            throw new BundleFormatException(Root, manifest.Digest.ToString(), $"content does not match its digest (found {actual}, {content.Length} bytes)");
        }

        return content;
    }

    public ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken)
    {
        var path = BlobPath(blob.Digest);
        if (!File.Exists(path))
        {
            throw new BundleFormatException(Root, blob.Digest.ToString(), "blob is missing from blobs/");
        }

        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return ValueTask.FromResult<Stream>(new VerifyingStream(file, blob.Digest, blob.Size));
    }

    public ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken)
    {
        var info = new FileInfo(BlobPath(blob.Digest));
        return ValueTask.FromResult(info.Exists && info.Length == blob.Size);
    }

    public ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken) => HasBlobAsync(manifest, cancellationToken);

    public async ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken)
    {
        var ingest = StartIngest(blob.Digest.Algorithm);
        try
        {
            await ingest.CopyFromAsync(content, cancellationToken, blob.Size).ConfigureAwait(false);
            await ingest.CommitAsync(blob.Digest, BlobPath(blob.Digest), cancellationToken, blob.Size).ConfigureAwait(false);
        }
        catch
        {
            await ingest.AbortAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            await ingest.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken)
    {
        using (var bytes = new MemoryStream(content.ToArray(), writable: false))
        {
            await WriteBlobAsync(manifest, bytes, cancellationToken).ConfigureAwait(false);
        }

        if (reference is not null)
        {
            await AddEntryAsync(NamedEntry(manifest, reference), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Adds an entry to <c>index.json</c> as given (annotations included), replacing one with the same name;
    /// used when a layout is rebuilt from an archive's own <c>index.json</c>.
    /// </summary>
    public async ValueTask AddEntryAsync(Descriptor entry, CancellationToken cancellationToken)
    {
        await _indexLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            lock (_entries)
            {
                var name = NameOf(entry);
                _entries.RemoveAll(e => name is null ? NameOf(e) is null && e.Digest == entry.Digest : NameOf(e) == name);
                _entries.Add(entry);
            }

            SaveIndex();
        }
        finally
        {
            _indexLock.Release();
        }
    }

    /// <summary>
    /// The index entry for a manifest under a name. A full image reference gets containerd's name annotation
    /// (what <c>ctr import</c> and <c>docker load</c> read) and its tag as OCI ref name, as <c>ctr export</c>
    /// and Docker 25 write them; a bare name (skopeo's <c>oci:DIR:NAME</c>) is the ref name alone.
    /// </summary>
    public static Descriptor NamedEntry(Descriptor manifest, string reference)
    {
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        if (IsFullReference(reference) && ImageReference.TryParse(reference, out var parsed))
        {
            annotations[ImageNameAnnotation] = parsed.ToString();
            annotations[RefNameAnnotation] = parsed.Tag ?? parsed.Digest?.ToString() ?? "latest";
        }
        else
        {
            annotations[RefNameAnnotation] = reference;
        }

        return new Descriptor
        {
            MediaType = manifest.MediaType,
            Digest = manifest.Digest,
            Size = manifest.Size,
            Platform = manifest.Platform,
            Annotations = annotations,
        };
    }

    /// <summary>A registry-style reference (has a path, tag or digest) rather than a bare layout tag.</summary>
    public static bool IsFullReference(string name) => name.AsSpan().IndexOfAny('/', ':', '@') >= 0;

    public ValueTask DisposeAsync()
    {
        _indexLock.Dispose();
        var ingest = Path.Combine(Root, IngestFolder);
        if (Directory.Exists(ingest) && !Directory.EnumerateFileSystemEntries(ingest).Any())
        {
            Directory.Delete(ingest);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>A new ingest inside this layout, for content whose digest is learnt while it is written.</summary>
    internal BlobIngest StartIngest(string algorithm)
    {
        var folder = Path.Combine(Root, IngestFolder);
        Directory.CreateDirectory(folder);
        return BlobIngest.Start(Path.Combine(folder, Guid.NewGuid().ToString("N")), algorithm);
    }

    private void SaveIndex()
    {
        List<Descriptor> entries;
        lock (_entries)
        {
            entries = [.. _entries];
        }

        var bytes = BundleJson.Serialize(new LayoutIndex { Manifests = entries }, BundleJsonContext.Default.LayoutIndex);
        AtomicFile.Write(Path.Combine(Root, "index.json"), bytes);
    }

    private static List<Descriptor> ReadIndex(string root, string indexPath)
    {
        if (new FileInfo(indexPath).Length > MaxManifestSize)
        {
            throw new BundleFormatException(root, "index.json", $"larger than the {MaxManifestSize} bytes allowed");
        }

        try
        {
            var document = ManifestDocument.Parse(File.ReadAllBytes(indexPath), MediaTypes.OciIndex);
            return [.. document.Manifests];
        }
        catch (ManifestFormatException ex)
        {
            throw new BundleFormatException(root, "index.json", ex.Message, ex);
        }
    }

    private static byte[] HashOf(Digest digest, byte[] content)
    {
        using var hash = digest.CreateHash();
        hash.AppendData(content);
        return hash.GetHashAndReset();
    }
}
