namespace Airlock.Oci;

/// <summary>Media types of the OCI image spec and Docker's schema 2, the only ones a registry must understand.</summary>
public static class MediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayer = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string OciEmpty = "application/vnd.oci.empty.v1+json";
    public const string OciLayoutHeader = "application/vnd.oci.layout.header.v1+json";

    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// <summary>The empty JSON object <c>{}</c> used as config of artifacts.</summary>
    public static ReadOnlySpan<byte> EmptyJson => "{}"u8;

    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsImageManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    /// <summary>An image configuration (OCI or Docker), as opposed to an artifact's config.</summary>
    public static bool IsImageConfig(string? mediaType) => mediaType is OciConfig or DockerConfig;

    public static bool IsManifest(string? mediaType) => IsIndex(mediaType) || IsImageManifest(mediaType);
}
