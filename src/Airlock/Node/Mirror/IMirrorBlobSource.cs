using Airlock.Oci;
using Microsoft.AspNetCore.Http;

namespace Airlock.Node.Mirror;

/// <summary>A blob GET or HEAD containerd sent to the node mirror for a registry a <see cref="IMirrorBlobSource"/> shares.</summary>
public sealed record MirrorBlobRequest(string Registry, string Repository, Digest Digest, bool Head);

/// <summary>What a registry (or, with <c>--p2p-share-tags</c>, a peer) answered for a manifest by tag: the manifest's descriptor.</summary>
public sealed record MirrorTag(string Registry, string Repository, string Tag, Digest Digest, string MediaType, long Size);

/// <summary>What the node mirror lends its blob source: the registries.yaml in service and its way to the registries.</summary>
public interface IMirrorRegistryAccess
{
    /// <summary>The registries.yaml being served now.</summary>
    RegistriesFile Registries { get; }

    /// <summary>
    /// The blob from <paramref name="registry"/>'s registries.yaml endpoints (in order, rewrites, TLS and credentials
    /// applied, a stalled body cut after the response timeout), unverified, with its size as <see cref="Stream.Length"/>.
    /// Throws <see cref="Distribution.OciException"/> naming every endpoint's failure.
    /// </summary>
    Task<Stream> OpenBlobAsync(string registry, string repository, Digest digest, CancellationToken cancellationToken);

    /// <summary>
    /// Whether <paramref name="registry"/>'s registries.yaml endpoints (credentials applied) let this node read the blob: a
    /// HEAD, true when an endpoint answers 2xx; false when none does (they refuse it, lack it, or cannot be reached).
    /// </summary>
    Task<bool> CanReadBlobAsync(string registry, string repository, Digest digest, CancellationToken cancellationToken);
}

/// <summary>
/// Where the node mirror gets shared blobs before (or instead of) the registry: the peer-to-peer mirror
/// (<c>Airlock.Cluster.Peers</c>) implements it. Layers below the cluster know only this.
/// </summary>
public interface IMirrorBlobSource
{
    /// <summary>Called once the node mirror serves: from now on the source may fetch from the registries through it.</summary>
    void Attach(IMirrorRegistryAccess registries);

    /// <summary>Whether blobs of <paramref name="registry"/> go through this source (given the registries.yaml served).</summary>
    bool Shares(RegistriesFile registries, string registry);

    /// <summary>Writes the whole response for <paramref name="request"/> (an error included, as an <see cref="Distribution.OciException"/>).</summary>
    Task ServeBlobAsync(HttpContext context, MirrorBlobRequest request);

    /// <summary>
    /// Called when a registry answered a manifest by tag of a shared registry (HEAD or GET), so the source may answer
    /// other nodes that resolve the tag through it.
    /// </summary>
    void TagResolved(MirrorTag tag)
    {
    }

    /// <summary>
    /// The tag as another source resolves it before the registry is asked (peers, only with <c>--p2p-share-tags</c>: a peer
    /// may answer a stale tag); null to ask the registry.
    /// </summary>
    Task<MirrorTag?> ResolveTagAsync(string registry, string repository, string tag, CancellationToken cancellationToken) => Task.FromResult<MirrorTag?>(null);

    /// <summary>Answers a request outside <c>/v2/</c> (the source's <c>/metrics</c>, its status); false when it is not one of its paths.</summary>
    Task<bool> TryServeOtherAsync(HttpContext context);
}
