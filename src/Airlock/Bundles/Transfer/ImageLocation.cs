using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;

namespace Airlock.Bundles.Transfer;

/// <summary>The kinds of place an image can be copied from or to, named as skopeo names them.</summary>
public enum ImageTransport
{
    /// <summary><c>docker://REF</c>: a registry, reached through the registry client.</summary>
    Docker,

    /// <summary><c>oci:DIR[:NAME]</c>: an OCI layout directory.</summary>
    OciLayout,

    /// <summary><c>oci-archive:FILE[:NAME]</c>: a tar of an OCI layout.</summary>
    OciArchive,

    /// <summary><c>docker-archive:FILE[:REF]</c>: a <c>docker save</c> style tar (Airlock's also carries an OCI layout).</summary>
    DockerArchive,
}

/// <summary>
/// Where an image is: a transport, the path (for files and directories) and the reference inside it. Paths
/// and references split at the first colon after the transport, as skopeo does, so a reference may contain
/// colons and a path may not.
/// </summary>
public sealed record ImageLocation(ImageTransport Transport, string? Path, string? Reference)
{
    /// <summary>The registry reference of a <see cref="ImageTransport.Docker"/> location.</summary>
    public ImageReference? Image => Transport == ImageTransport.Docker ? ImageReference.Parse(Reference!) : null;

    public static ImageLocation Parse(string value)
    {
        if (value.StartsWith("docker://", StringComparison.Ordinal))
        {
            var reference = value["docker://".Length..];
            if (!ImageReference.TryParse(reference, out _, out var error))
            {
                throw new FormatException(error);
            }

            return new ImageLocation(ImageTransport.Docker, null, reference);
        }

        foreach (var (prefix, transport) in new[] { ("oci:", ImageTransport.OciLayout), ("oci-archive:", ImageTransport.OciArchive), ("docker-archive:", ImageTransport.DockerArchive) })
        {
            if (value.StartsWith(prefix, StringComparison.Ordinal))
            {
                var rest = value[prefix.Length..];
                var colon = rest.IndexOf(':', StringComparison.Ordinal);
                var path = colon < 0 ? rest : rest[..colon];
                var reference = colon < 0 || colon == rest.Length - 1 ? null : rest[(colon + 1)..];
                return path.Length == 0
                    ? throw new FormatException($"image location \"{value}\" has no path")
                    : new ImageLocation(transport, path, reference);
            }
        }

        throw new FormatException($"image location \"{value}\" has no known transport (docker://REF, oci:DIR[:NAME], oci-archive:FILE[:NAME], docker-archive:FILE[:REF])");
    }

    /// <summary>A location as a user gives it to <c>save</c>: a transport-prefixed location, else a registry reference.</summary>
    public static ImageLocation ParseOrRegistry(string value) =>
        value.StartsWith("docker://", StringComparison.Ordinal) || value.StartsWith("oci:", StringComparison.Ordinal)
        || value.StartsWith("oci-archive:", StringComparison.Ordinal) || value.StartsWith("docker-archive:", StringComparison.Ordinal)
            ? Parse(value)
            : Parse("docker://" + value);

    public override string ToString() => Transport switch
    {
        ImageTransport.Docker => $"docker://{Reference}",
        ImageTransport.OciLayout => Reference is null ? $"oci:{Path}" : $"oci:{Path}:{Reference}",
        ImageTransport.OciArchive => Reference is null ? $"oci-archive:{Path}" : $"oci-archive:{Path}:{Reference}",
        _ => Reference is null ? $"docker-archive:{Path}" : $"docker-archive:{Path}:{Reference}",
    };
}

/// <summary>
/// How registries are reached: the registry client (<c>Airlock.Remote</c>) plugs in here, so Bundles needs no
/// reference to it. For each registry reference it opens a source or a target for that repository.
/// </summary>
public sealed record RegistryConnector(Func<ImageReference, IImageSource> OpenSource, Func<ImageReference, IImageTarget> OpenTarget)
{
    /// <summary>
    /// Tells a registry (by host) what a load pushed into it, when it keeps such records (Airlock's console); best
    /// effort: the load has succeeded whatever this does. Null: loads are not reported.
    /// </summary>
    public Func<string, LoadReport, CancellationToken, Task>? ReportLoad { get; init; }
}
