using Airlock.Oci;
using TypesApi = Airlock.Node.Containerd.Api.Types;

namespace Airlock.Node.Containerd;

/// <summary>Conversions between Airlock's OCI types and containerd's wire types, shared by the service clients.</summary>
internal static class ContainerdWire
{
    internal static TypesApi.ContentDescriptor ToWire(Descriptor descriptor)
    {
        var wire = new TypesApi.ContentDescriptor { MediaType = descriptor.MediaType, Digest = descriptor.Digest.ToString(), Size = descriptor.Size };
        if (descriptor.Annotations is not null)
        {
            AddAll(wire.Annotations, descriptor.Annotations);
        }

        return wire;
    }

    internal static Descriptor FromWire(TypesApi.ContentDescriptor wire) => new()
    {
        MediaType = wire.MediaType,
        Digest = Digest.Parse(wire.Digest),
        Size = wire.Size,
        Annotations = wire.Annotations.Count == 0 ? null : new Dictionary<string, string>(wire.Annotations, StringComparer.Ordinal),
    };

    internal static void AddAll(Google.Protobuf.Collections.MapField<string, string> map, IReadOnlyDictionary<string, string> values)
    {
        foreach (var (key, value) in values)
        {
            map[key] = value;
        }
    }

    internal static SnapshotMount FromWire(TypesApi.Mount mount) => new(mount.Type, mount.Source, mount.Options.ToList());

    internal static TypesApi.Mount ToWire(SnapshotMount mount)
    {
        var wire = new TypesApi.Mount { Type = mount.Type, Source = mount.Source };
        wire.Options.Add(mount.Options);
        return wire;
    }
}
