using System.Runtime.CompilerServices;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Remote;

/// <summary>
/// One repository of a registry as a place images are read from and written to (<c>docker://REF</c>). Blobs
/// read from one RemoteImageStore and written to another on the same registry are mounted across
/// repositories instead of being uploaded again.
/// </summary>
public sealed class RemoteImageStore : IImageSource, IImageTarget, IReferrerSource
{
    // Which repository a blob stream handed out by any store came from, so a target on the same registry can
    // mount instead of upload. Weak keys: an entry lives only as long as its stream.
    private static readonly ConditionalWeakTable<Stream, ImageReference> Origins = new();

    private readonly bool _ownsClient;
    private readonly List<string> _mountSources = [];

    private RemoteImageStore(ImageReference reference, RegistryClient client, bool ownsClient)
    {
        Reference = reference;
        Client = client;
        _ownsClient = ownsClient;
    }

    /// <summary>The repository (and the tag/digest a bare <see cref="ResolveAsync"/> resolves).</summary>
    public ImageReference Reference { get; }

    public RegistryClient Client { get; }

    /// <summary>A store with its own client (and connection pool), disposed with the store.</summary>
    public static RemoteImageStore Create(ImageReference reference, RemoteOptions options)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return new RemoteImageStore(reference, new RegistryClient(options), ownsClient: true);
    }

    /// <summary>A store sharing <paramref name="client"/>, which the caller keeps and disposes.</summary>
    public static RemoteImageStore Create(ImageReference reference, RegistryClient client)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(client);
        return new RemoteImageStore(reference, client, ownsClient: false);
    }

    /// <summary>Names another repository on the same registry that may hold blobs being written, to mount from.</summary>
    public void AddMountSource(string repository)
    {
        if (!ImageReference.IsValidRepository(repository))
        {
            throw new ArgumentException($"\"{repository}\" is not a valid repository name", nameof(repository));
        }

        lock (_mountSources)
        {
            if (!_mountSources.Contains(repository))
            {
                _mountSources.Add(repository);
            }
        }
    }

    /// <summary>
    /// Resolves a tag or digest of this repository (empty: the store's own reference). A full reference naming
    /// this same repository is accepted too.
    /// </summary>
    public async ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) =>
        await Client.ResolveAsync(Reference, Identifier(reference), cancellationToken).ConfigureAwait(false);

    public async ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var (descriptor, content) = await Client.GetManifestAsync(Reference, manifest.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        if (descriptor.Size != manifest.Size)
        {
            throw new DigestMismatchException(manifest.Digest, descriptor.Digest, $"manifest is {descriptor.Size} bytes, not {manifest.Size}");
        }

        return content;
    }

    public async ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken)
    {
        var stream = await Client.OpenBlobAsync(Reference, blob, cancellationToken).ConfigureAwait(false);
        Origins.AddOrUpdate(stream, Reference);
        return stream;
    }

    public async ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        return await Client.BlobExistsAsync(Reference, blob.Digest, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes a blob, mounting it from the repository its stream came from (same registry) or a configured mount source.</summary>
    public async ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken) =>
        await PushBlobAsync(blob, content, cancellationToken).ConfigureAwait(false);

    /// <summary>As <see cref="WriteBlobAsync"/>, saying whether the blob was mounted or uploaded.</summary>
    public async Task<BlobPushResult> PushBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        return await Client.PushBlobAsync(Reference, blob, content, MountSourceFor(content), cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return await Client.ManifestExistsAsync(Reference, manifest.Digest, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pushes a manifest by digest, or by tag when <paramref name="reference"/> (a tag or full reference) names one.</summary>
    public async ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var computed = Digest.Sha256(content.Span);
        if (manifest.Digest.Algorithm == Digest.Sha256Algorithm && computed != manifest.Digest)
        {
            throw new DigestMismatchException(manifest.Digest, computed, "manifest bytes do not match their descriptor");
        }

        var tag = string.IsNullOrEmpty(reference) ? null : TagOf(reference);
        await Client.PushManifestAsync(Reference, manifest.MediaType, content, tag, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every tag of the repository.</summary>
    public Task<IReadOnlyList<string>> ListTagsAsync(CancellationToken cancellationToken) => Client.ListTagsAsync(Reference, cancellationToken);

    /// <summary>Manifests whose subject is <paramref name="subject"/> (referrers API, or the <c>sha256-&lt;hex&gt;</c> tag fallback).</summary>
    public Task<IReadOnlyList<Descriptor>> ReferrersAsync(Descriptor subject, string? artifactType, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(subject);
        return Client.ReferrersAsync(Reference, subject.Digest, artifactType, cancellationToken);
    }

    async ValueTask<IReadOnlyList<Descriptor>> IReferrerSource.ReferrersAsync(Descriptor subject, CancellationToken cancellationToken) =>
        await ReferrersAsync(subject, null, cancellationToken).ConfigureAwait(false);

    public ValueTask DisposeAsync()
    {
        if (_ownsClient)
        {
            Client.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private string? MountSourceFor(Stream content)
    {
        if (Origins.TryGetValue(content, out var origin)
            && string.Equals(RegistryHost.ApiHostOf(origin.Registry), RegistryHost.ApiHostOf(Reference.Registry), StringComparison.OrdinalIgnoreCase)
            && origin.Repository != Reference.Repository)
        {
            return origin.Repository;
        }

        lock (_mountSources)
        {
            return _mountSources.FirstOrDefault(r => r != Reference.Repository);
        }
    }

    private string Identifier(string? reference)
    {
        if (string.IsNullOrEmpty(reference))
        {
            return Reference.Identifier;
        }

        if (Digest.TryParse(reference, out _) || ImageReference.IsValidTag(reference))
        {
            return reference;
        }

        return SameRepository(reference).Identifier;
    }

    private string TagOf(string reference)
    {
        if (ImageReference.IsValidTag(reference) || Digest.TryParse(reference, out _))
        {
            return reference;
        }

        var parsed = SameRepository(reference);
        return parsed.Tag ?? parsed.Digest?.ToString() ?? "latest";
    }

    private ImageReference SameRepository(string reference)
    {
        if (!ImageReference.TryParse(reference, out var parsed, out var error))
        {
            throw new ArgumentException(error, nameof(reference));
        }

        if (!string.Equals(parsed.Registry, Reference.Registry, StringComparison.OrdinalIgnoreCase) || parsed.Repository != Reference.Repository)
        {
            throw new ArgumentException($"reference \"{reference}\" names another repository than {Reference.Name}", nameof(reference));
        }

        return parsed;
    }
}
