using System.Text.Json;
using System.Text.Json.Serialization;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;

namespace Airlock.Registry.Api;

/// <summary>A repository in the repositories list: tags, bytes its manifests and blobs take (each once), last push.</summary>
public sealed record RepositorySummary(string Name, int Tags, long Size, DateTimeOffset? LastPush);

/// <summary>A page of repositories; <see cref="Next"/> is the cursor of the next page, null on the last one.</summary>
public sealed record RepositoryPage(IReadOnlyList<RepositorySummary> Repositories, string? Next);

/// <summary>An artifact whose subject is a manifest (a signature, an SBOM, an attestation).</summary>
public sealed record ReferrerSummary(string Digest, string MediaType, string? ArtifactType, long Size, IReadOnlyDictionary<string, string>? Annotations);

/// <summary>A tag: what it points at, for which platforms, how big (manifests, configs and layers, each once) and when the image was built.</summary>
public sealed record TagSummary(
    string Tag,
    string Digest,
    string MediaType,
    string? ArtifactType,
    long Size,
    IReadOnlyList<string> Platforms,
    DateTimeOffset? Created,
    IReadOnlyList<ReferrerSummary> Referrers);

/// <summary>A repository's page: its summary and a page of its tags (<see cref="Next"/> continues them).</summary>
public sealed record RepositoryDetail(RepositorySummary Repository, IReadOnlyList<TagSummary> Tags, string? Next);

/// <summary>A manifest of an index: the platform it is for.</summary>
public sealed record ChildManifest(string Digest, string MediaType, long Size, string? Platform);

/// <summary>A layer (or an artifact's blob) and the other repositories, among those the user may pull, that hold it too.</summary>
public sealed record LayerSummary(string Digest, string MediaType, long Size, IReadOnlyList<string> SharedWith);

/// <summary>An image config, as far as a person reads it.</summary>
public sealed record ConfigSummary(
    string Digest,
    long Size,
    DateTimeOffset? Created,
    string? Author,
    string? Platform,
    IReadOnlyList<string>? Entrypoint,
    IReadOnlyList<string>? Cmd,
    IReadOnlyDictionary<string, string>? Labels,
    IReadOnlyList<ImageHistoryEntry> History);

/// <summary>A manifest's page.</summary>
public sealed record ManifestDetail(
    string Repository,
    string Digest,
    string MediaType,
    string? ArtifactType,
    long Size,
    long TotalSize,
    IReadOnlyList<string> Tags,
    IReadOnlyList<string> Platforms,
    IReadOnlyDictionary<string, string>? Annotations,
    ReferrerSummary? Subject,
    IReadOnlyList<ChildManifest> Manifests,
    ConfigSummary? Config,
    IReadOnlyList<LayerSummary> Layers,
    IReadOnlyList<ReferrerSummary> Referrers);

public sealed record LoadRecordPage(IReadOnlyList<LoadRecord> Records);

/// <summary>An upload session in flight: into which repository, since when (null when the store does not say), how many bytes so far.</summary>
public sealed record UploadSummary(string Repository, DateTimeOffset? StartedAt, DateTimeOffset LastActivity, long Bytes);

/// <summary>The storage page: the store now and over time, the last collections, uploads in flight.</summary>
public sealed record StorageReport(
    StorageSample Current,
    int Repositories,
    IReadOnlyList<StorageSample> Samples,
    IReadOnlyList<CollectionRecord> Collections,
    IReadOnlyList<UploadSummary> Uploads);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RepositoryPage))]
[JsonSerializable(typeof(RepositoryDetail))]
[JsonSerializable(typeof(ManifestDetail))]
[JsonSerializable(typeof(LoadRecordPage))]
[JsonSerializable(typeof(StorageReport))]
[JsonSerializable(typeof(ClusterSnapshot))]
internal sealed partial class ApiJsonContext : JsonSerializerContext
{
}
