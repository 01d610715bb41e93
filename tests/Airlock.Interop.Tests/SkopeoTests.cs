using System.Net.Http.Headers;
using Airlock.Interop.Tests.Fixtures;
using Airlock.Oci;

namespace Airlock.Interop.Tests;

/// <summary>
/// skopeo (containers/image, the library under podman, buildah and CRI-O) pushes into and pulls out
/// of the registry. A registry must store manifests byte for byte: any re-serialisation changes the
/// digest and breaks every reference by digest.
/// </summary>
public sealed class SkopeoTests : IAsyncLifetime
{
    private readonly TempRoot _work = TempRoot.Create("airlock-skopeo-test-");
    private RegistryProcess? _registry;

    private RegistryProcess Registry => _registry ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync() => _registry = await RegistryProcess.StartAsync();

    public async Task DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    [Fact]
    public async Task OCI_image_copied_in_and_out_keeps_its_manifest_bytes_and_blobs()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));

        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();

        Assert.Equal(image.ManifestBytes, await Skopeo.RawManifestAsync(Registry, "test/busybox:1"));
        await AssertServedDigestAsync("test/busybox", "1", image);

        var copiedOut = Path.Combine(_work.Path, "out");
        (await Skopeo.RunAsync(["copy", "--quiet", .. Skopeo.SourceTls(Registry), $"docker://{Registry.Host}/test/busybox:1", $"oci:{copiedOut}:1"]))
            .EnsureSuccess();
        Assert.Equal(image.Digest, TaggedDigest(copiedOut));
        Assert.Subset(LayoutBlobs(copiedOut), image.Blobs.ToHashSet());
    }

    [Fact]
    public async Task Docker_schema2_image_copied_in_and_out_keeps_its_manifest_bytes()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"), ImageFlavor.Docker);

        (await Skopeo.PushAsync(image, Registry, "test/busybox-docker:1")).EnsureSuccess();

        Assert.Equal(image.ManifestBytes, await Skopeo.RawManifestAsync(Registry, "test/busybox-docker:1"));
        await AssertServedDigestAsync("test/busybox-docker", "1", image);

        // dir: keeps the manifest as served; oci: would convert it to an OCI manifest.
        var copiedOut = Path.Combine(_work.Path, "out");
        (await Skopeo.RunAsync(["copy", "--quiet", .. Skopeo.SourceTls(Registry), $"docker://{Registry.Host}/test/busybox-docker:1", $"dir:{copiedOut}"]))
            .EnsureSuccess();
        Assert.Equal(image.ManifestBytes, await File.ReadAllBytesAsync(Path.Combine(copiedOut, "manifest.json")));
        foreach (var blob in image.Blobs.Where(blob => blob != image.Digest))
        {
            Assert.True(File.Exists(Path.Combine(copiedOut, blob.Encoded)), $"blob {blob} was not copied out");
        }
    }

    [Fact]
    public async Task OCI_image_converted_to_v2s2_on_push_is_served_as_a_Docker_manifest_with_the_same_layer()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "source"));

        (await Skopeo.PushAsync(image, Registry, "test/busybox-v2s2:1", ["--format", "v2s2"])).EnsureSuccess();

        var served = await Skopeo.RawManifestAsync(Registry, "test/busybox-v2s2:1");
        var manifest = ManifestDocument.Parse(served, null);
        Assert.Equal(MediaTypes.DockerManifest, manifest.MediaType);
        Assert.Equal(MediaTypes.DockerConfig, manifest.Config?.MediaType);
        var layer = Assert.Single(manifest.Layers);
        Assert.Equal(MediaTypes.DockerLayerGzip, layer.MediaType);
        Assert.Contains(layer.Digest, image.Blobs);

        using var client = Registry.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Head, "v2/test/busybox-v2s2/manifests/1");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.DockerManifest));
        using var response = await client.SendAsync(request);
        Assert.Equal(Digest.Sha256(served).ToString(), Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
        Assert.Equal(MediaTypes.DockerManifest, response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Multi_arch_index_copied_with_all_keeps_the_index_and_every_platform_manifest()
    {
        var image = await TestImages.WriteMultiArchAsync(Path.Combine(_work.Path, "source"));

        (await Skopeo.PushAsync(image, Registry, "test/busybox-multi:1", ["--all"])).EnsureSuccess();

        var served = await Skopeo.RawManifestAsync(Registry, "test/busybox-multi:1");
        Assert.Equal(image.ManifestBytes, served);
        var index = ManifestDocument.Parse(served, null);
        Assert.Equal(["amd64", "arm64"], index.Manifests.Select(child => child.Platform?.Architecture));
        foreach (var child in index.Manifests)
        {
            var childBytes = await Skopeo.RawManifestAsync(Registry, $"test/busybox-multi@{child.Digest}");
            Assert.Equal(child.Digest, Digest.Sha256(childBytes));
            Assert.Equal(child.Size, childBytes.Length);
        }

        var copiedOut = Path.Combine(_work.Path, "out");
        (await Skopeo.RunAsync(["copy", "--quiet", "--all", .. Skopeo.SourceTls(Registry), $"docker://{Registry.Host}/test/busybox-multi:1", $"oci:{copiedOut}:1"]))
            .EnsureSuccess();
        Assert.Equal(image.Digest, TaggedDigest(copiedOut));
        Assert.Equal(image.Blobs.ToHashSet(), LayoutBlobs(copiedOut));
    }

    [Fact]
    public async Task Pulling_a_tag_the_registry_does_not_have_fails_and_names_the_problem()
    {
        var copiedOut = Path.Combine(_work.Path, "out");

        var copy = await Skopeo.RunAsync(["copy", "--quiet", .. Skopeo.SourceTls(Registry), $"docker://{Registry.Host}/test/absent:1", $"oci:{copiedOut}:1"]);

        Assert.False(copy.Succeeded, copy.ToString());
        Assert.Contains("manifest unknown", copy.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The registry's own answer to GET manifest: Content-Type and Docker-Content-Digest must match what was pushed.</summary>
    private async Task AssertServedDigestAsync(string repository, string tag, TestImage image)
    {
        using var client = Registry.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repository}/manifests/{tag}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(image.MediaType));
        using var response = await client.SendAsync(request);
        response.EnsureSuccessStatusCode();
        Assert.Equal(image.MediaType, response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(image.Digest.ToString(), Assert.Single(response.Headers.GetValues("Docker-Content-Digest")));
        Assert.Equal(image.ManifestBytes, await response.Content.ReadAsByteArrayAsync());
    }

    private static Digest TaggedDigest(string layout)
    {
        var index = ManifestDocument.Parse(File.ReadAllBytes(Path.Combine(layout, "index.json")), MediaTypes.OciIndex);
        return Assert.Single(index.Manifests).Digest;
    }

    private static HashSet<Digest> LayoutBlobs(string layout) =>
        Directory.EnumerateFiles(Path.Combine(layout, "blobs", "sha256"))
            .Select(path => Digest.Parse($"sha256:{Path.GetFileName(path)}"))
            .ToHashSet();
}
