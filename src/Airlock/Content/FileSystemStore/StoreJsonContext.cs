using System.Text.Json.Serialization;
using Airlock.Oci;

namespace Airlock.Content.FileSystemStore;

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Descriptor))]
[JsonSerializable(typeof(UploadSessionState))]
[JsonSerializable(typeof(List<StorageSample>))]
[JsonSerializable(typeof(List<CollectionRecord>))]
[JsonSerializable(typeof(List<LoadRecord>))]
internal sealed partial class StoreJsonContext : JsonSerializerContext
{
}
