using System.Collections.Concurrent;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;

namespace Airlock.Registry.Api;

/// <summary>
/// Reads manifests and configs out of the store for the console: a tag's platforms, size and build time,
/// and a manifest's whole page. What is learnt from content is kept by digest (content never changes), at
/// most <see cref="MaxCached"/> manifests' worth.
/// </summary>
internal sealed class ImageInspector(RegistryStorage storage, int maxManifestBytes)
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
        if (storage.Repositories.ResolveTag(repository, tag) is not { } digest
            || await FactsAsync(digest, storage.Repositories.ManifestMediaType(repository, digest), 0, cancellationToken).ConfigureAwait(false) is not { } facts)
        {
            return null;
        }

        return new TagSummary(tag, digest.ToString(), facts.MediaType, facts.ArtifactType, facts.Size, facts.Platforms, facts.Created, Referrers(repository, digest));
    }

    /// <summary>A manifest's page; null when the repository has no such manifest.</summary>
    /// <param name="visibleRepositories">Repositories the user may pull, in which shared layers are looked for.</param>
    public async Task<ManifestDetail?> ManifestAsync(string repository, Digest digest, IEnumerable<string> visibleRepositories, CancellationToken cancellationToken)
    {
        var repositories = storage.Repositories;
        if (repositories.ManifestMediaType(repository, digest) is not { } storedType
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
        var layers = document.IsIndex
            ? []
            : document.Layers.Select(layer => new LayerSummary(layer.Digest.ToString(), layer.MediaType, layer.Size,
                others.Where(other => repositories.HasBlobLink(other, layer.Digest)).ToList())).ToList();
        var tags = (repositories.ListTags(repository) ?? []).Where(tag => repositories.ResolveTag(repository, tag) == digest).ToList();
        var children = document.IsIndex
            ? document.Manifests.Select(child => new ChildManifest(child.Digest.ToString(), child.MediaType, child.Size, child.Platform?.ToString())).ToList()
            : [];
        var subject = document.Subject is { } s
            ? new ReferrerSummary(s.Digest.ToString(), s.MediaType, s.ArtifactType, s.Size, s.Annotations)
            : null;
        return new ManifestDetail(repository, digest.ToString(), document.MediaType, facts.ArtifactType, bytes, facts.Size, tags, facts.Platforms,
            document.Annotations, subject, children, config, layers, Referrers(repository, digest));
    }

    private List<ReferrerSummary> Referrers(string repository, Digest subject) =>
        [.. storage.Repositories.ListReferrers(repository, subject).Select(r => new ReferrerSummary(r.Digest.ToString(), r.MediaType, r.ArtifactType, r.Size, r.Annotations))];

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
