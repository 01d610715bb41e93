using System.Text.Json.Serialization;
using Airlock.Cluster.Membership;

namespace Airlock.Cluster.Supervisor;

/// <summary>
/// The supervisor API's requests and answers, source-generated (the binary is Native AOT), in the node list's conventions;
/// a null where the type has none (a request's <c>"labels": null</c>) is a malformed request, not a crash later.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, RespectNullableAnnotations = true,
    Converters = [typeof(NodeRoleJsonConverter), typeof(NodeStatusJsonConverter)])]
[JsonSerializable(typeof(JoinRequest))]
[JsonSerializable(typeof(CertificatesResponse))]
[JsonSerializable(typeof(HeartbeatRequest))]
[JsonSerializable(typeof(MemberSettings))]
[JsonSerializable(typeof(RenewRequest))]
[JsonSerializable(typeof(NodeListResponse))]
[JsonSerializable(typeof(ErrorResponse))]
internal sealed partial class SupervisorJson : JsonSerializerContext
{
}
