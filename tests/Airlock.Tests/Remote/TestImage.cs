using System.Text;
using System.Text.Json;
using Airlock.Oci;

namespace Airlock.Tests.Remote;

/// <summary>A small image built in memory: random layers, a config and its manifest, for pushing to real registries.</summary>
public sealed record TestImage(IReadOnlyList<(Descriptor Descriptor, byte[] Content)> Blobs, Descriptor Manifest, byte[] ManifestBytes)
{
    public static TestImage Create(int layers = 2, int layerSize = 64 * 1024, string? platformOs = null, Descriptor? subject = null, string? artifactType = null)
    {
        var blobs = new List<(Descriptor, byte[])>();
        var config = Encoding.UTF8.GetBytes($$"""{"architecture":"amd64","os":"{{platformOs ?? "linux"}}","rootfs":{"type":"layers","diff_ids":[]},"n":"{{Guid.NewGuid()}}"}""");
        var configDescriptor = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Digest.Sha256(config), Size = config.Length };
        blobs.Add((configDescriptor, config));
        for (var i = 0; i < layers; i++)
        {
            var layer = new byte[layerSize];
            Random.Shared.NextBytes(layer);
            blobs.Add((new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256(layer), Size = layer.Length }, layer));
        }

        var manifest = new Dictionary<string, object?>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciManifest,
            ["config"] = configDescriptor,
            ["layers"] = blobs.Skip(1).Select(b => b.Item1).ToList(),
        };
        if (artifactType is not null)
        {
            manifest["artifactType"] = artifactType;
        }

        if (subject is not null)
        {
            manifest["subject"] = subject;
        }

        var bytes = JsonSerializer.SerializeToUtf8Bytes(manifest);
        return new TestImage(blobs, new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256(bytes), Size = bytes.Length, ArtifactType = artifactType }, bytes);
    }

    /// <summary>An OCI index over the given manifests.</summary>
    public static (Descriptor Descriptor, byte[] Content) Index(IEnumerable<Descriptor> manifests, string mediaType = MediaTypes.OciIndex)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = mediaType,
            ["manifests"] = manifests.ToList(),
        });
        return (new Descriptor { MediaType = mediaType, Digest = Digest.Sha256(bytes), Size = bytes.Length }, bytes);
    }
}
