using System.Text.Json;
using System.Text.Json.Serialization;

namespace Airlock.Cluster.Membership;

/// <summary>
/// The node records under <c>server/nodes/</c> and the node list, source-generated (the binary is Native AOT): camelCase
/// keys, enums as words, nulls left out; a null where the type has none is a malformed document, not a crash later.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, RespectNullableAnnotations = true,
    Converters = [typeof(NodeRoleJsonConverter), typeof(NodeStatusJsonConverter)])]
[JsonSerializable(typeof(NodeRecord))]
[JsonSerializable(typeof(IReadOnlyList<ClusterNode>))]
internal sealed partial class MembershipJson : JsonSerializerContext
{
}

/// <summary><c>agent</c>, <c>server</c>.</summary>
internal sealed class NodeRoleJsonConverter() : JsonStringEnumConverter<NodeRole>(JsonNamingPolicy.CamelCase);

/// <summary><c>ready</c>, <c>notReady</c>.</summary>
internal sealed class NodeStatusJsonConverter() : JsonStringEnumConverter<NodeStatus>(JsonNamingPolicy.CamelCase);
