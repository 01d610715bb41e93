using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Tests.Node.Containerd;

/// <summary>
/// A runnable image built here without a registry: Debian's static busybox in one gzip layer, a second
/// layer with a text file (so unpacking has to chain layers), an OCI config whose default command echoes a
/// greeting, and an index that also lists an arm64 image.
/// </summary>
internal sealed class TestImage : IImageSource
{
    public const string Greeting = "hello from airlock";
    public const string SecondLayerText = "second layer on top";

    // Fixed times make the layers reproducible: the same image built twice has the same digests.
    private static readonly DateTimeOffset Epoch = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly Dictionary<Digest, (Descriptor Descriptor, byte[] Bytes)> _content = [];

    private TestImage()
    {
    }

    public required Descriptor Index { get; init; }

    public required Descriptor AmdManifest { get; init; }

    public required Descriptor AmdConfig { get; init; }

    public required IReadOnlyList<Descriptor> AmdLayers { get; init; }

    public required IReadOnlyList<Digest> AmdDiffIds { get; init; }

    public required Descriptor ArmManifest { get; init; }

    /// <summary>Every blob and manifest, in the order a copy writes them (children before parents).</summary>
    public IEnumerable<Descriptor> Blobs => _content.Values.Select(c => c.Descriptor).Where(d => !MediaTypes.IsManifest(d.MediaType));

    /// <summary>
    /// Builds the image; a different <paramref name="secondLayerText"/> gives an image sharing only the busybox
    /// layer. <paramref name="docker"/> uses Docker's schema 2 media types, as docker-archive files carry.
    /// </summary>
    public static TestImage Build(string secondLayerText = SecondLayerText, bool docker = false)
    {
        var (layerType, configType, manifestType, indexType) = docker
            ? (MediaTypes.DockerLayerGzip, MediaTypes.DockerConfig, MediaTypes.DockerManifest, MediaTypes.DockerManifestList)
            : (MediaTypes.OciLayerGzip, MediaTypes.OciConfig, MediaTypes.OciManifest, MediaTypes.OciIndex);
        var content = new Dictionary<Digest, (Descriptor, byte[])>();
        Descriptor Add(string mediaType, byte[] bytes, Platform? platform = null)
        {
            var descriptor = new Descriptor { MediaType = mediaType, Digest = Digest.Sha256(bytes), Size = bytes.Length, Platform = platform };
            content[descriptor.Digest] = (descriptor with { Platform = null }, bytes);
            return descriptor;
        }

        var (busyboxTar, busyboxGz) = Layer(writer =>
        {
            AddDirectory(writer, "bin/");
            AddDirectory(writer, "etc/");
            var busybox = new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox")
            {
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                    | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
                DataStream = File.OpenRead("/bin/busybox"),
                ModificationTime = Epoch,
            };
            writer.WriteEntry(busybox);
            busybox.DataStream.Dispose();
            foreach (var applet in new[] { "sh", "echo", "cat" })
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "bin/" + applet) { LinkName = "busybox", ModificationTime = Epoch });
            }
        });
        var (textTar, textGz) = Layer(writer =>
        {
            AddDirectory(writer, "etc/");
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "etc/airlock") { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(secondLayerText + "\n")), ModificationTime = Epoch });
        });

        var amdLayers = new[] { Add(layerType, busyboxGz), Add(layerType, textGz) };
        var amdDiffIds = new[] { Digest.Sha256(busyboxTar), Digest.Sha256(textTar) };
        var amdConfig = Add(configType, Config("amd64", amdDiffIds));
        var amd = Add(manifestType, Manifest(manifestType, amdConfig, amdLayers), new Platform { Os = "linux", Architecture = "amd64" });

        var armConfig = Add(configType, Config("arm64", [amdDiffIds[1]]));
        var arm = Add(manifestType, Manifest(manifestType, armConfig, [amdLayers[1]]), new Platform { Os = "linux", Architecture = "arm64", Variant = "v8" });

        var index = Add(indexType, JsonSerializer.SerializeToUtf8Bytes(new
        {
            schemaVersion = 2,
            mediaType = indexType,
            manifests = new[] { amd, arm },
        }, new JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull }));

        var image = new TestImage
        {
            Index = index,
            AmdManifest = amd,
            AmdConfig = amdConfig,
            AmdLayers = amdLayers,
            AmdDiffIds = amdDiffIds,
            ArmManifest = arm,
        };
        foreach (var (digest, entry) in content)
        {
            image._content[digest] = entry;
        }

        return image;
    }

    /// <summary>Bytes of a blob, for tests that tamper with them.</summary>
    public byte[] BytesOf(Descriptor descriptor) => _content[descriptor.Digest].Bytes;

    /// <summary>Writes the whole graph to <paramref name="target"/>: blobs, then manifests children first, the index named last.</summary>
    public async Task CopyToAsync(IImageTarget target, string reference, CancellationToken cancellationToken)
    {
        foreach (var blob in Blobs)
        {
            if (!await target.HasBlobAsync(blob, cancellationToken))
            {
                await using var stream = await OpenBlobAsync(blob, cancellationToken);
                await target.WriteBlobAsync(blob, stream, cancellationToken);
            }
        }

        foreach (var manifest in new[] { AmdManifest, ArmManifest })
        {
            await target.WriteManifestAsync(manifest, await ReadManifestAsync(manifest, cancellationToken), null, cancellationToken);
        }

        await target.WriteManifestAsync(Index, await ReadManifestAsync(Index, cancellationToken), reference, cancellationToken);
    }

    public ValueTask<Descriptor> ResolveAsync(string reference, CancellationToken cancellationToken) => ValueTask.FromResult(Index);

    public ValueTask<ReadOnlyMemory<byte>> ReadManifestAsync(Descriptor manifest, CancellationToken cancellationToken) =>
        ValueTask.FromResult<ReadOnlyMemory<byte>>(_content[manifest.Digest].Bytes);

    public ValueTask<Stream> OpenBlobAsync(Descriptor blob, CancellationToken cancellationToken) =>
        ValueTask.FromResult<Stream>(new VerifyingStream(new MemoryStream(_content[blob.Digest].Bytes, writable: false), blob.Digest, blob.Size));

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static (byte[] Tar, byte[] Gzip) Layer(Action<TarWriter> fill)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            fill(writer);
        }

        using var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(tar.GetBuffer(), 0, (int)tar.Length);
        }

        return (tar.ToArray(), gz.ToArray());
    }

    private static void AddDirectory(TarWriter writer, string name) =>
        writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, name)
        {
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
            ModificationTime = Epoch,
        });

    private static byte[] Config(string architecture, IEnumerable<Digest> diffIds) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        architecture,
        os = "linux",
        config = new { Cmd = new[] { "/bin/echo", Greeting }, Env = new[] { "PATH=/bin" } },
        rootfs = new { type = "layers", diff_ids = diffIds.Select(d => d.ToString()).ToArray() },
    });

    private static byte[] Manifest(string mediaType, Descriptor config, IEnumerable<Descriptor> layers) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        schemaVersion = 2,
        mediaType,
        config,
        layers,
    }, new JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull });
}
