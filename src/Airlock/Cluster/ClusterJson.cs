using System.Text.Json;
using System.Text.Json.Serialization;
using Airlock.Cluster.Join;
using Airlock.Cluster.Membership;
using Airlock.Cluster.Pki;
using Airlock.Cluster.Supervisor;
using Airlock.Cluster.Tokens;

namespace Airlock.Cluster;

/// <summary>
/// Every JSON document of the cluster — the supervisor API's requests and answers, and the files under <c>server/</c> and
/// <c>agent/</c> — source-generated (the binary is Native AOT). camelCase keys, enums as lower-case words, nulls left out;
/// a null where the type has none (a request's <c>"labels": null</c>) is a malformed document, not a crash later.
/// The CLI prints the same shapes the API serves with it.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, RespectNullableAnnotations = true,
    Converters = [typeof(NodeRoleJsonConverter), typeof(NodeStatusJsonConverter)])]
[JsonSerializable(typeof(List<StoredBootstrapToken>))]
[JsonSerializable(typeof(IReadOnlyList<BootstrapTokenInfo>))]
[JsonSerializable(typeof(NodeRecord))]
[JsonSerializable(typeof(IReadOnlyList<ClusterNode>))]
[JsonSerializable(typeof(JoinRequest))]
[JsonSerializable(typeof(CertificatesResponse))]
[JsonSerializable(typeof(HeartbeatRequest))]
[JsonSerializable(typeof(MemberSettings))]
[JsonSerializable(typeof(RenewRequest))]
[JsonSerializable(typeof(NodeListResponse))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(AgentMembership))]
[JsonSerializable(typeof(IReadOnlyList<CertificateStatus>))]
internal sealed partial class ClusterJson : JsonSerializerContext
{
}

/// <summary><c>agent</c>, <c>server</c>.</summary>
internal sealed class NodeRoleJsonConverter() : JsonStringEnumConverter<NodeRole>(JsonNamingPolicy.CamelCase);

/// <summary><c>ready</c>, <c>notReady</c>.</summary>
internal sealed class NodeStatusJsonConverter() : JsonStringEnumConverter<NodeStatus>(JsonNamingPolicy.CamelCase);
