using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Bundles;

/// <summary>
/// Referrers in an OCI layout or archive: the <c>index.json</c> entries whose manifest names a subject (as
/// <c>oras</c>, <c>cosign save</c> and <c>airlock images save --include-referrers</c> write them), found by
/// reading each entry's manifest once.
/// </summary>
internal sealed class LayoutReferrers(IImageSource source, Func<IReadOnlyList<Descriptor>> entries)
{
    private Task<Dictionary<Digest, List<Descriptor>>>? _bySubject;

    public async ValueTask<IReadOnlyList<Descriptor>> FindAsync(Descriptor subject, CancellationToken cancellationToken)
    {
        var bySubject = await (_bySubject ??= IndexAsync(cancellationToken)).ConfigureAwait(false);
        return bySubject.TryGetValue(subject.Digest, out var found) ? found : [];
    }

    /// <summary>Whether an index entry is a referrer (an artifact with a subject) rather than an image to name.</summary>
    public async ValueTask<bool> IsReferrerAsync(Descriptor entry, CancellationToken cancellationToken)
    {
        var bySubject = await (_bySubject ??= IndexAsync(cancellationToken)).ConfigureAwait(false);
        return bySubject.Values.Any(list => list.Any(r => r.Digest == entry.Digest));
    }

    private async Task<Dictionary<Digest, List<Descriptor>>> IndexAsync(CancellationToken cancellationToken)
    {
        var bySubject = new Dictionary<Digest, List<Descriptor>>();
        foreach (var entry in entries())
        {
            if (!MediaTypes.IsManifest(entry.MediaType))
            {
                continue;
            }

            var document = ManifestDocument.Parse((await source.ReadManifestAsync(entry, cancellationToken).ConfigureAwait(false)).Span, entry.MediaType);
            if (document.Subject is { } subject)
            {
                var list = bySubject.TryGetValue(subject.Digest, out var existing) ? existing : bySubject[subject.Digest] = [];
                list.Add(new Descriptor { MediaType = entry.MediaType, Digest = entry.Digest, Size = entry.Size, ArtifactType = document.ArtifactType ?? document.Config?.MediaType });
            }
        }

        return bySubject;
    }
}
