using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;
using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Interop.Tests.Fixtures;

/// <summary>Which manifest and config media types a test image uses.</summary>
public enum ImageFlavor
{
    Oci,
    Docker,
}

/// <summary>
/// An image written as an OCI image layout directory, tagged <see cref="Tag"/> in its index.json. Docker
/// media-type images are also written in skopeo's <c>dir:</c> format (<see cref="DirTransportPath"/>):
/// skopeo 1.9's <c>oci:</c> transport only finds OCI manifests in an index.json.
/// </summary>
public sealed record TestImage(string LayoutPath, string Tag, string MediaType, Digest Digest, byte[] ManifestBytes, IReadOnlyList<Digest> Blobs)
{
    public string? DirTransportPath { get; init; }

    /// <summary>The skopeo/containers-image name to copy this image from: <c>oci:DIR:TAG</c> or <c>dir:DIR</c>.</summary>
    public string SourceReference => DirTransportPath is null ? $"oci:{LayoutPath}:{Tag}" : $"dir:{DirTransportPath}";
}

/// <summary>
/// Builds tiny images without internet: a gzip layer holding the static busybox of Debian's
/// busybox-static package at /bin/busybox with /bin/sh and /bin/echo linking to it, so the image
/// really runs (<see cref="Greeting"/> is what its default command prints). Output is deterministic:
/// fixed timestamps and owners, so the same image has the same digests on every run.
/// </summary>
public static class TestImages
{
    public const string Greeting = "hello from airlock";
    public const string BusyboxPath = "/bin/busybox";

    private static readonly DateTimeOffset EntryTime = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly Lazy<LayerContent> Busybox = new(CreateBusyboxLayer);
    private static readonly Lazy<LayerContent> Arm64Marker = new(() => CreateLayer(writer =>
        AddFile(writer, "etc/airlock-arch", "arm64\n"u8.ToArray(), UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead)));

    /// <summary>A single-platform linux/amd64 image that runs <c>/bin/echo hello from airlock</c>.</summary>
    public static async Task<TestImage> WriteRunnableAsync(string layoutDirectory, ImageFlavor flavor = ImageFlavor.Oci, string tag = "1",
        CancellationToken cancellationToken = default)
    {
        var layout = new LayoutWriter(layoutDirectory);
        var (manifest, bytes) = await layout.WriteImageAsync(Busybox.Value, "amd64", flavor, cancellationToken);
        await layout.FinishAsync(manifest, tag, cancellationToken);
        var dirTransport = flavor == ImageFlavor.Docker ? await layout.WriteDirTransportAsync(bytes, cancellationToken) : null;
        return new TestImage(layoutDirectory, tag, manifest.MediaType, manifest.Digest, bytes, layout.Blobs) { DirTransportPath = dirTransport };
    }

    /// <summary>
    /// An OCI index with a runnable linux/amd64 image and a linux/arm64 image holding one small file,
    /// so pulls must pick (or copy all) platforms.
    /// </summary>
    public static async Task<TestImage> WriteMultiArchAsync(string layoutDirectory, string tag = "1", CancellationToken cancellationToken = default)
    {
        var layout = new LayoutWriter(layoutDirectory);
        var (amd64, _) = await layout.WriteImageAsync(Busybox.Value, "amd64", ImageFlavor.Oci, cancellationToken);
        var (arm64, _) = await layout.WriteImageAsync(Arm64Marker.Value, "arm64", ImageFlavor.Oci, cancellationToken);
        var index = JsonSerializer.SerializeToUtf8Bytes(new
        {
            schemaVersion = 2,
            mediaType = MediaTypes.OciIndex,
            manifests = new[]
            {
                amd64 with { Platform = new Platform { Architecture = "amd64", Os = "linux" } },
                arm64 with { Platform = new Platform { Architecture = "arm64", Os = "linux" } },
            },
        });
        var indexDescriptor = await layout.WriteBlobAsync(MediaTypes.OciIndex, index, cancellationToken);
        await layout.FinishAsync(indexDescriptor, tag, cancellationToken);
        return new TestImage(layoutDirectory, tag, MediaTypes.OciIndex, indexDescriptor.Digest, index, layout.Blobs);
    }

    private static LayerContent CreateBusyboxLayer()
    {
        if (!File.Exists(BusyboxPath))
        {
            throw new FileNotFoundException($"{BusyboxPath} is missing: install Debian's busybox-static package (test.sh does)");
        }

        const UnixFileMode executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        return CreateLayer(writer =>
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.Directory, "bin/") { Mode = executable, ModificationTime = EntryTime });
            AddFile(writer, "bin/busybox", File.ReadAllBytes(BusyboxPath), executable);
            foreach (var applet in new[] { "sh", "echo" })
            {
                writer.WriteEntry(new UstarTarEntry(TarEntryType.SymbolicLink, $"bin/{applet}")
                {
                    LinkName = "busybox",
                    Mode = executable,
                    ModificationTime = EntryTime,
                });
            }
        });
    }

    private static void AddFile(TarWriter writer, string name, byte[] content, UnixFileMode mode) =>
        writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = mode,
            ModificationTime = EntryTime,
            DataStream = new MemoryStream(content, writable: false),
        });

    // Test layers are a few MiB at most, so they are built in memory once per test run.
    private static LayerContent CreateLayer(Action<TarWriter> addEntries)
    {
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            addEntries(writer);
        }

        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(tar.GetBuffer(), 0, (int)tar.Length);
        }

        return new LayerContent(compressed.ToArray(), Digest.Sha256(tar.GetBuffer().AsSpan(0, (int)tar.Length)));
    }

    private sealed record LayerContent(byte[] Compressed, Digest DiffId);

    /// <summary>Writes blobs into <c>blobs/sha256/</c> and finally oci-layout and index.json.</summary>
    private sealed class LayoutWriter(string directory)
    {
        private readonly List<Digest> _blobs = [];

        public IReadOnlyList<Digest> Blobs => _blobs;

        public async Task<(Descriptor Manifest, byte[] Bytes)> WriteImageAsync(LayerContent layer, string architecture, ImageFlavor flavor,
            CancellationToken cancellationToken)
        {
            var (manifestType, configType, layerType) = flavor == ImageFlavor.Docker
                ? (MediaTypes.DockerManifest, MediaTypes.DockerConfig, MediaTypes.DockerLayerGzip)
                : (MediaTypes.OciManifest, MediaTypes.OciConfig, MediaTypes.OciLayerGzip);
            var layerDescriptor = await WriteBlobAsync(layerType, layer.Compressed, cancellationToken);
            var config = JsonSerializer.SerializeToUtf8Bytes(new
            {
                architecture,
                os = "linux",
                config = new { Cmd = new[] { "/bin/echo", Greeting } },
                rootfs = new { type = "layers", diff_ids = new[] { layer.DiffId.ToString() } },
            });
            var configDescriptor = await WriteBlobAsync(configType, config, cancellationToken);
            var manifest = JsonSerializer.SerializeToUtf8Bytes(new
            {
                schemaVersion = 2,
                mediaType = manifestType,
                config = configDescriptor,
                layers = new[] { layerDescriptor },
            });
            return (await WriteBlobAsync(manifestType, manifest, cancellationToken), manifest);
        }

        public async Task<Descriptor> WriteBlobAsync(string mediaType, byte[] content, CancellationToken cancellationToken)
        {
            var digest = Digest.Sha256(content);
            var blobs = Directory.CreateDirectory(Path.Combine(directory, "blobs", digest.Algorithm)).FullName;
            await using (var ingest = BlobIngest.Start(Path.Combine(blobs, $".ingest-{Guid.NewGuid():N}")))
            {
                await ingest.WriteAsync(content, cancellationToken);
                await ingest.CommitAsync(digest, Path.Combine(blobs, digest.Encoded), cancellationToken);
            }

            _blobs.Add(digest);
            return new Descriptor { MediaType = mediaType, Digest = digest, Size = content.Length };
        }

        /// <summary>
        /// skopeo's <c>dir:</c> transport beside the layout: manifest.json, a version file and every
        /// blob named by its hex digest; it copies the manifest bytes unchanged.
        /// </summary>
        public async Task<string> WriteDirTransportAsync(byte[] manifest, CancellationToken cancellationToken)
        {
            var target = Directory.CreateDirectory(directory.TrimEnd('/') + ".dir").FullName;
            await File.WriteAllTextAsync(Path.Combine(target, "version"), "Directory Transport Version: 1.1\n", cancellationToken);
            await File.WriteAllBytesAsync(Path.Combine(target, "manifest.json"), manifest, cancellationToken);
            var manifestDigest = Digest.Sha256(manifest);
            foreach (var blob in _blobs.Where(blob => blob != manifestDigest))
            {
                File.Copy(Path.Combine(directory, "blobs", blob.Algorithm, blob.Encoded), Path.Combine(target, blob.Encoded));
            }

            return target;
        }

        public async Task FinishAsync(Descriptor root, string tag, CancellationToken cancellationToken)
        {
            await File.WriteAllTextAsync(Path.Combine(directory, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""", cancellationToken);
            var tagged = root with { Annotations = new Dictionary<string, string> { ["org.opencontainers.image.ref.name"] = tag } };
            var index = JsonSerializer.SerializeToUtf8Bytes(new { schemaVersion = 2, mediaType = MediaTypes.OciIndex, manifests = new[] { tagged } });
            await File.WriteAllBytesAsync(Path.Combine(directory, "index.json"), index, cancellationToken);
        }
    }
}
