using System.Text.Json.Serialization;
using Airlock.Oci;

namespace Airlock.Content.Etcd;

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Descriptor))]
internal sealed partial class EtcdJsonContext : JsonSerializerContext
{
}
