using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// A place images are read from: a registry, an OCI layout directory, an archive. Copy, save, load,
/// sync, mirror and import all walk the graph from one of these (regclient / go-containerregistry shape).
/// </summary>
public interface IImageSource : IAsyncDisposable
{
    /// <summary>The root descriptor (manifest or index) a tag or digest names in this source.</summary>
    ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken);

    /// <summary>A manifest or index, verified against its descriptor; small (capped) so held in memory.</summary>
    ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken);

    /// <summary>A blob as a stream that fails at its end if the content does not match the descriptor.</summary>
    ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken);
}

/// <summary>A place images are written to. Blobs first, then manifests children before parents, then tags.</summary>
public interface IImageTarget : IAsyncDisposable
{
    ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken);

    ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken);

    ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken);

    /// <summary>Stores a manifest by digest; <paramref name="reference"/> (a tag or full reference) also names it when given.</summary>
    ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken);
}

/// <summary>A source that can list the artifacts (signatures, SBOMs) whose <c>subject</c> is a manifest.</summary>
public interface IReferrerSource
{
    /// <summary>Manifests whose subject is <paramref name="subject"/>; empty when there are none.</summary>
    ValueTask<IReadOnlyList<Descriptor>> ReferrersAsync(Descriptor subject, CancellationToken cancellationToken);
}
