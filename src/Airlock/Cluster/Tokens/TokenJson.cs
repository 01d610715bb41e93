using System.Text.Json.Serialization;

namespace Airlock.Cluster.Tokens;

/// <summary><c>bootstrap-tokens.json</c> and <c>token list</c>'s documents, source-generated (the binary is Native AOT).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(List<StoredBootstrapToken>))]
[JsonSerializable(typeof(IReadOnlyList<BootstrapTokenInfo>))]
internal sealed partial class TokenJson : JsonSerializerContext
{
}
