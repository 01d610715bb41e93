using System.Text.Json.Serialization;

namespace Airlock.Cluster.Pki;

/// <summary><c>certificate check</c>'s document, source-generated (the binary is Native AOT).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(IReadOnlyList<CertificateStatus>))]
internal sealed partial class PkiJson : JsonSerializerContext
{
}
