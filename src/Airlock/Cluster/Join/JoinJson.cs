using System.Text.Json.Serialization;

namespace Airlock.Cluster.Join;

/// <summary><c>agent/membership.json</c>, source-generated (the binary is Native AOT).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(AgentMembership))]
internal sealed partial class JoinJson : JsonSerializerContext
{
}
