using System.Collections.Concurrent;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Registry.Api;

/// <summary>
/// Reads manifests and configs out of the store for the console: a tag's platforms, size and build time,
/// and a manifest's whole page. What is learnt from content is kept by digest (content never changes), at
/// most <see cref="MaxCached"/> manifests' worth.
/// </summary>
internal sealed class ImageInspector(IRegistryStore storage, int maxManifestBytes)
{
    public const int MaxCached = 20_000;

    // An index of indexes is read this deep, and this many of an index's manifests at most.
    private const int MaxDepth = 2;
    private const int MaxChildren = 256;
    private const int MaxConfigBytes = 4 << 20;

    private readonly ConcurrentDictionary<Digest, ImageFacts> _facts = new();

    /// <summary>What a tag's row shows about the manifest it points at.</summary>
    /// <param name="Blobs">Every manifest, config and layer of the image with its size, each once.</param>
    internal sealed record ImageFacts(string MediaType, string? ArtifactType, IReadOnlyDictionary<Digest, long> Blobs, IReadOnlyList<string> Platforms, DateTimeOffset? Created)
    {
        public long Size => Blobs.Values.Sum();
    }

    public async Task<TagSummary?> TagAsync(string repository, string tag, CancellationToken cancellationToken)
    {
        var repositories = storage.Repositories;
        if (await repositories.ResolveTagAsync(repository, tag, cancellationToken).ConfigureAwait(false) is not { } digest
            || await FactsAsync(digest, await repositories.ManifestMediaTypeAsync(repository, digest, cancellationToken).ConfigureAwait(false), 0, cancellationToken)
                .ConfigureAwait(false) is not { } facts)
        {
            return null;
        }

        return new TagSummary(tag, digest.ToString(), facts.MediaType, facts.ArtifactType, facts.Size, facts.Platforms, facts.Created,
            await ReferrersAsync(repository, digest, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>A manifest's page; null when the repository has no such manifest.</summary>
    /// <param name="visibleRepositories">Repositories the user may pull, in which shared layers are looked for.</param>
    public async Task<ManifestDetail?> ManifestAsync(string repository, Digest digest, IEnumerable<string> visibleRepositories, CancellationToken cancellationToken)
    {
        var repositories = storage.Repositories;
        if (await repositories.ManifestMediaTypeAsync(repository, digest, cancellationToken).ConfigureAwait(false) is not { } storedType
            || await ReadAsync(digest, storedType, cancellationToken).ConfigureAwait(false) is not (var document, var bytes)
            || await FactsAsync(digest, storedType, 0, cancellationToken).ConfigureAwait(false) is not { } facts)
        {
            return null;
        }

        ConfigSummary? config = null;
        if (!document.IsIndex && document.Config is { } configDescriptor
            && await ReadConfigAsync(configDescriptor, cancellationToken).ConfigureAwait(false) is { } parsed)
        {
            config = new ConfigSummary(
                configDescriptor.Digest.ToString(), configDescriptor.Size, parsed.Created, parsed.Author, parsed.Platform?.ToString(),
                parsed.Config?.Entrypoint, parsed.Config?.Cmd, parsed.Config?.Labels, parsed.History ?? []);
        }

        var others = visibleRepositories.Where(r => r != repository).ToList();
        var layers = new List<LayerSummary>();
        // An index has no layers of its own (its children's pages list theirs).
        foreach (var layer in document.IsIndex ? Array.Empty<Descriptor>() : document.Layers)
        {
            var sharedWith = new List<string>();
            foreach (var other in others)
            {
                if (await repositories.GetBlobLinkAsync(other, layer.Digest, cancellationToken).ConfigureAwait(false) is not null)
                {
                    sharedWith.Add(other);
                }
            }

            layers.Add(new LayerSummary(layer.Digest.ToString(), layer.MediaType, layer.Size, sharedWith));
        }

        var tags = new List<string>();
        foreach (var tag in (await repositories.ListTagsAsync(repository, null, int.MaxValue, cancellationToken).ConfigureAwait(false))?.Names ?? [])
        {
            if (await repositories.ResolveTagAsync(repository, tag, cancellationToken).ConfigureAwait(false) == digest)
            {
                tags.Add(tag);
            }
        }

        var children = document.IsIndex
            ? document.Manifests.Select(child => new ChildManifest(child.Digest.ToString(), child.MediaType, child.Size, child.Platform?.ToString())).ToList()
            : [];
        var subject = document.Subject is { } s
            ? new ReferrerSummary(s.Digest.ToString(), s.MediaType, s.ArtifactType, s.Size, s.Annotations)
            : null;
        return new ManifestDetail(repository, digest.ToString(), document.MediaType, facts.ArtifactType, bytes, facts.Size, tags, facts.Platforms,
            document.Annotations, subject, children, config, layers, await ReferrersAsync(repository, digest, cancellationToken).ConfigureAwait(false));
    }

    private async Task<List<ReferrerSummary>> ReferrersAsync(string repository, Digest subject, CancellationToken cancellationToken) =>
        [.. (await storage.Repositories.ListReferrersAsync(repository, subject, cancellationToken).ConfigureAwait(false))
            .Select(r => new ReferrerSummary(r.Digest.ToString(), r.MediaType, r.ArtifactType, r.Size, r.Annotations))];

    private async Task<ImageFacts?> FactsAsync(Digest digest, string? mediaType, int depth, CancellationToken cancellationToken)
    {
        if (_facts.TryGetValue(digest, out var known))
        {
            return known;
        }

        if (await ReadAsync(digest, mediaType, cancellationToken).ConfigureAwait(false) is not (var document, var bytes))
        {
            return null;
        }

        var blobs = new Dictionary<Digest, long> { [digest] = bytes };
        var platforms = new List<string>();
        DateTimeOffset? created = null;
        if (document.IsIndex)
        {
            foreach (var child in document.Manifests.Take(MaxChildren))
            {
                var childFacts = depth < MaxDepth ? await FactsAsync(child.Digest, child.MediaType, depth + 1, cancellationToken).ConfigureAwait(false) : null;
                foreach (var (blob, size) in childFacts?.Blobs ?? new Dictionary<Digest, long> { [child.Digest] = child.Size })
                {
                    blobs[blob] = size;
                }

                // Attestation manifests (buildx's unknown/unknown) are not platforms of the image.
                var platform = child.Platform?.ToString();
                foreach (var name in platform is null ? childFacts?.Platforms ?? [] : [platform])
                {
                    if (name != "unknown/unknown" && !platforms.Contains(name))
                    {
                        platforms.Add(name);
                    }
                }

                created ??= childFacts?.Created;
            }
        }
        else
        {
            foreach (var child in document.Children)
            {
                blobs[child.Digest] = child.Size;
            }

            if (document.Config is { } config && await ReadConfigAsync(config, cancellationToken).ConfigureAwait(false) is { } parsed)
            {
                created = parsed.Created;
                if (parsed.Platform is { } platform)
                {
                    platforms.Add(platform.ToString());
                }
            }
        }

        var facts = new ImageFacts(document.MediaType, document.ArtifactType ?? ArtifactTypeOf(document), blobs, platforms, created);
        if (_facts.Count >= MaxCached)
        {
            _facts.Clear();
        }

        _facts[digest] = facts;
        return facts;
    }

    // An artifact without artifactType names its kind by its config's media type (OCI 1.1 image-spec guidance).
    private static string? ArtifactTypeOf(ManifestDocument document) =>
        !document.IsIndex && document.Config is { } config && !MediaTypes.IsImageConfig(config.MediaType) && config.MediaType != MediaTypes.OciEmpty
            ? config.MediaType
            : null;

    private async Task<(ManifestDocument Document, long Bytes)?> ReadAsync(Digest digest, string? mediaType, CancellationToken cancellationToken)
    {
        if (await storage.Blobs.ReadSmallAsync(digest, maxManifestBytes, cancellationToken).ConfigureAwait(false) is not { } content)
        {
            return null;
        }

        try
        {
            return (ManifestDocument.Parse(content, mediaType), content.Length);
        }
        catch (ManifestFormatException)
        {
            return null;
        }
    }

    private async Task<ImageConfig?> ReadConfigAsync(Descriptor config, CancellationToken cancellationToken)
    {
        if (!MediaTypes.IsImageConfig(config.MediaType) || config.Size > MaxConfigBytes)
        {
            return null;
        }

        return await storage.Blobs.ReadSmallAsync(config.Digest, MaxConfigBytes, cancellationToken).ConfigureAwait(false) is { } content
            ? ImageConfig.TryParse(content)
            : null;
    }
}
