using Airlock.Bundles.Layout;
using Airlock.Oci;

namespace Airlock.Bundles.Archive;

/// <summary>What a format reader found in an archive: its images, as the entries of its (possibly synthesised) <c>index.json</c>.</summary>
internal sealed class ArchiveImages
{
    /// <summary>The largest manifest, index or metadata file read whole.</summary>
    public const int MaxMetadataSize = OciLayoutStore.MaxManifestSize;

    public List<Descriptor> Entries { get; } = [];

    /// <summary>Manifests the archive does not hold but implies (<c>docker save</c>), by digest.</summary>
    public Dictionary<Digest, byte[]> Synthesised { get; } = [];

    /// <summary>As <c>OciLayoutStore.AddEntryAsync</c>: an entry replaces one with the same name.</summary>
    public void Add(Descriptor entry)
    {
        var name = OciLayoutStore.NameOf(entry);
        Entries.RemoveAll(e => name is null ? OciLayoutStore.NameOf(e) is null && e.Digest == entry.Digest : OciLayoutStore.NameOf(e) == name);
        Entries.Add(entry);
    }

    /// <summary>A metadata file (<c>index.json</c>, <c>manifest.json</c>) read whole, verified against the content it was indexed with.</summary>
    public static async Task<byte[]> ReadMetadataAsync(TarIndex index, string name, CancellationToken cancellationToken)
    {
        var file = index.Files[name];
        if (file.Size > MaxMetadataSize)
        {
            throw index.Refuse(name, $"is {file.Size} bytes, larger than the {MaxMetadataSize} allowed");
        }

        return await index.ReadVerifiedAsync(file, file.Digest, cancellationToken).ConfigureAwait(false);
    }
}
