using System.Text;
using Airlock.Node.Containerd;
using Airlock.Oci;

namespace Airlock.Tests.Node.Containerd;

public sealed class ContainerdLabelsTests
{
    [Fact]
    public void Manifest_children_are_numbered_per_kind_as_containerd_numbers_them()
    {
        var layers = Enumerable.Range(0, 3).Select(i => Blob(MediaTypes.OciLayerGzip, "layer" + i)).ToList();
        var document = Parse(new { schemaVersion = 2, mediaType = MediaTypes.OciManifest, config = Blob(MediaTypes.OciConfig, "config"), layers });

        var labels = ContainerdLabels.ChildReferences(document);

        Assert.Equal(
            new Dictionary<string, string>
            {
                ["containerd.io/gc.ref.content.config"] = Digest.Sha256("config"u8).ToString(),
                ["containerd.io/gc.ref.content.l.0"] = layers[0].Digest.ToString(),
                ["containerd.io/gc.ref.content.l.1"] = layers[1].Digest.ToString(),
                ["containerd.io/gc.ref.content.l.2"] = layers[2].Digest.ToString(),
            },
            labels);
    }

    [Fact]
    public void Index_children_are_m_labels_and_unknown_kinds_get_plain_content_labels()
    {
        var manifests = new[] { Blob(MediaTypes.DockerManifest, "a"), Blob(MediaTypes.OciIndex, "nested"), Blob(MediaTypes.OciManifest, "b") };
        var document = Parse(new { schemaVersion = 2, mediaType = MediaTypes.OciIndex, manifests });

        var labels = ContainerdLabels.ChildReferences(document);

        Assert.Equal(manifests[0].Digest.ToString(), labels["containerd.io/gc.ref.content.m.0"]);
        Assert.Equal(manifests[2].Digest.ToString(), labels["containerd.io/gc.ref.content.m.1"]);
        Assert.Equal(manifests[1].Digest.ToString(), labels["containerd.io/gc.ref.content.0"]);
    }

    [Fact]
    public void Distribution_source_merges_repositories_sorted_without_duplicates()
    {
        var label = ContainerdLabels.DistributionSource("docker.io", "library/busybox", "rancher/pause,library/alpine,library/busybox");

        Assert.Equal("containerd.io/distribution.source.docker.io", label!.Value.Key);
        Assert.Equal("library/alpine,library/busybox,rancher/pause", label.Value.Value);
    }

    [Theory]
    [InlineData("docker.io", "containerd.io/distribution.source.docker.io")]
    [InlineData("registry.local:5000", "containerd.io/distribution.source.registry.local")]
    [InlineData("[fd00::1]:5000", "containerd.io/distribution.source.fd00::1")]
    public void Distribution_source_is_keyed_by_host_name_without_port_as_containerd_keys_it(string registry, string key)
    {
        Assert.Equal(key, ContainerdLabels.DistributionSource(registry, "app", null)!.Value.Key);
    }

    [Fact]
    public void Distribution_source_that_would_exceed_the_label_limit_is_skipped()
    {
        var existing = string.Join(',', Enumerable.Range(0, 400).Select(i => "repository/number" + i));

        Assert.Null(ContainerdLabels.DistributionSource("docker.io", "library/busybox", existing));
    }

    private static Descriptor Blob(string mediaType, string text) =>
        new() { MediaType = mediaType, Digest = Digest.Sha256(Encoding.UTF8.GetBytes(text)), Size = text.Length };

    private static ManifestDocument Parse(object json) =>
        ManifestDocument.Parse(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(json), null);
}
