using System.Text.Json.Serialization;
using Airlock.Oci;

namespace Airlock.Content.Etcd;

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Descriptor))]
[JsonSerializable(typeof(StorageSample))]
[JsonSerializable(typeof(CollectionRecord))]
[JsonSerializable(typeof(LoadRecord))]
internal sealed partial class EtcdJsonContext : JsonSerializerContext
{
}
