using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

/// <summary>Builds small but real images (gzip layer tars, config with diff IDs, OCI manifests, indexes) into any target.</summary>
internal static class TestImages
{
    public sealed record Layer(byte[] Compressed, Digest DiffId)
    {
        public Descriptor Descriptor => new() { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256(Compressed), Size = Compressed.Length };
    }

    /// <summary>A gzip layer holding one file of <paramref name="size"/> pseudo-random bytes derived from <paramref name="seed"/>.</summary>
    public static Layer MakeLayer(int seed, int size = 4096)
    {
        var content = new byte[size];
        new Random(seed).NextBytes(content);
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"file-{seed}")
            {
                DataStream = new MemoryStream(content),
                ModificationTime = DateTimeOffset.UnixEpoch,
            });
        }

        var uncompressed = tar.ToArray();
        using var gz = new MemoryStream();
        using (var zip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            zip.Write(uncompressed);
        }

        return new Layer(gz.ToArray(), Digest.Sha256(uncompressed));
    }

    public static async Task<Descriptor> AddImageAsync(IImageTarget target, Platform platform, IReadOnlyList<Layer> layers, string? reference = null,
        string mediaType = MediaTypes.OciManifest)
    {
        var config = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = platform.Architecture,
            ["os"] = platform.Os,
            ["config"] = new JsonObject { ["Cmd"] = new JsonArray("/bin/sh") },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(layers.Select(l => (JsonNode)l.DiffId.ToString()).ToArray()) },
        }.ToJsonString());
        var docker = mediaType == MediaTypes.DockerManifest;
        var configDescriptor = new Descriptor { MediaType = docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig, Digest = Digest.Sha256(config), Size = config.Length };
        await target.WriteBlobAsync(configDescriptor, new MemoryStream(config), CancellationToken.None);
        foreach (var layer in layers)
        {
            if (!await target.HasBlobAsync(layer.Descriptor, CancellationToken.None))
            {
                await target.WriteBlobAsync(layer.Descriptor, new MemoryStream(layer.Compressed), CancellationToken.None);
            }
        }

        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = mediaType,
            ["config"] = Json(configDescriptor),
            ["layers"] = new JsonArray(layers.Select(l => Json(docker ? l.Descriptor with { MediaType = MediaTypes.DockerLayerGzip } : l.Descriptor)).ToArray()),
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var descriptor = new Descriptor { MediaType = mediaType, Digest = Digest.Sha256(manifest), Size = manifest.Length, Platform = platform };
        await target.WriteManifestAsync(descriptor, manifest, reference, CancellationToken.None);
        return descriptor;
    }

    public static async Task<Descriptor> AddIndexAsync(IImageTarget target, IReadOnlyList<Descriptor> manifests, string? reference = null)
    {
        var index = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciIndex,
            ["manifests"] = new JsonArray(manifests.Select(m => (JsonNode)new JsonObject
            {
                ["mediaType"] = m.MediaType,
                ["digest"] = m.Digest.ToString(),
                ["size"] = m.Size,
                ["platform"] = new JsonObject { ["architecture"] = m.Platform!.Architecture, ["os"] = m.Platform.Os },
            }).ToArray()),
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var descriptor = new Descriptor { MediaType = MediaTypes.OciIndex, Digest = Digest.Sha256(index), Size = index.Length };
        await target.WriteManifestAsync(descriptor, index, reference, CancellationToken.None);
        return descriptor;
    }

    private static JsonObject Json(Descriptor d) => new() { ["mediaType"] = d.MediaType, ["digest"] = d.Digest.ToString(), ["size"] = d.Size };

    public static readonly Platform Amd64 = new() { Os = "linux", Architecture = "amd64" };
    public static readonly Platform Arm64 = new() { Os = "linux", Architecture = "arm64" };
    public static readonly Platform S390x = new() { Os = "linux", Architecture = "s390x" };
}

/// <summary>A temp folder removed after the test.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "airlock-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
