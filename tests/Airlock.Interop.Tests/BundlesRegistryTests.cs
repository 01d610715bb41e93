using System.Collections;
using System.Text;
using System.Text.Json.Nodes;
using Airlock.Bundles.Layout;
using Airlock.Cli.Hosting;
using Airlock.Interop.Tests.Fixtures;
using Airlock.Oci;

namespace Airlock.Interop.Tests;

/// <summary>
/// The air-gap round trip through Airlock's own registry: <c>airlock images save</c> from a registry
/// into an archive that containerd imports and runs, <c>airlock images load</c> of that archive into a
/// registry with the digests unchanged, and <c>copy</c> between registry and layout.
/// </summary>
public sealed class BundlesRegistryTests : IAsyncLifetime
{
    private readonly TempRoot _work = TempRoot.Create("airlock-bundles-reg-");
    private RegistryProcess? _registry;
    private ContainerdProcess? _containerd;

    private RegistryProcess Registry => _registry ?? throw new InvalidOperationException("not started");

    private ContainerdProcess Containerd => _containerd ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        var registry = RegistryProcess.StartAsync();
        var containerd = ContainerdProcess.StartAsync();
        _registry = await registry;
        _containerd = await containerd;
    }

    public async Task DisposeAsync()
    {
        if (_containerd is not null)
        {
            await _containerd.DisposeAsync();
        }

        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    private static async Task<(int Code, string Output)> AirlockAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(args, new Hashtable(), output, error);
        return (code, output + error.ToString());
    }

    [Fact]
    public async Task Saved_from_the_registry_the_archive_imports_into_containerd_and_runs()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "layout"));
        (await Skopeo.PushAsync(image, Registry, "test/busybox:1")).EnsureSuccess();
        var reference = $"{Registry.Host}/test/busybox:1";
        var archive = Path.Combine(_work.Path, "busybox.tar");

        var (code, output) = await AirlockAsync("images", "save", "--quiet", "-o", archive, reference);
        Assert.True(code == 0, output);

        (await Containerd.CtrAsync(["images", "import", archive])).EnsureSuccess();
        var listing = (await Containerd.CtrAsync(["images", "ls"])).EnsureSuccess();
        Assert.Contains(image.Digest.ToString(), listing.Stdout, StringComparison.Ordinal);
        var run = await Containerd.RunAsync(reference);
        Assert.True(run.Succeeded, $"{run}\ncontainerd log:\n{Containerd.RecentOutput}");
        Assert.Equal(TestImages.Greeting, run.Stdout.Trim());
    }

    [Fact]
    public async Task A_multi_arch_image_loaded_from_a_zstd_archive_keeps_its_index_digest()
    {
        var image = await TestImages.WriteMultiArchAsync(Path.Combine(_work.Path, "multi"));
        (await Skopeo.PushAsync(image, Registry, "test/multi:1", ["--all"])).EnsureSuccess();
        var archive = Path.Combine(_work.Path, "multi.tar.zst");
        Assert.Equal(0, (await AirlockAsync("images", "save", "--quiet", "-o", archive, $"{Registry.Host}/test/multi:1")).Code);

        var (code, output) = await AirlockAsync("images", "load", "--quiet", archive, "--to", $"{Registry.Host}/mirror");
        Assert.True(code == 0, output);

        // The source registry host is replaced by the target and the repository path kept.
        var raw = await Skopeo.RawManifestAsync(Registry, "mirror/test/multi:1");
        Assert.Equal(image.ManifestBytes, raw);
    }

    [Fact]
    public async Task Copy_from_the_registry_to_an_oci_layout_and_back_preserves_the_manifest()
    {
        var image = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "layout"), ImageFlavor.Docker);
        (await Skopeo.PushAsync(image, Registry, "test/docker:1")).EnsureSuccess();
        var layout = Path.Combine(_work.Path, "copied");

        Assert.Equal(0, (await AirlockAsync("images", "copy", "--quiet", $"docker://{Registry.Host}/test/docker:1", $"oci:{layout}:docker")).Code);
        var (code, output) = await AirlockAsync("images", "copy", "--quiet", $"oci:{layout}:docker", $"docker://{Registry.Host}/copied/docker:2");
        Assert.True(code == 0, output);

        Assert.Equal(image.ManifestBytes, await Skopeo.RawManifestAsync(Registry, "copied/docker:2"));
    }

    [Fact]
    public async Task Saving_a_missing_image_fails_with_the_registry_error_and_writes_no_archive()
    {
        var archive = Path.Combine(_work.Path, "missing.tar");

        var (code, output) = await AirlockAsync("images", "save", "--quiet", "-o", archive, $"{Registry.Host}/test/absent:1");

        Assert.Equal(1, code);
        Assert.Contains("test/absent", output, StringComparison.Ordinal);
        Assert.Contains("not found", output, StringComparison.OrdinalIgnoreCase);
        Assert.False(File.Exists(archive));
    }

    /// <summary>
    /// A multi-arch image in a docker-archive: Docker's manifest.json holds one image per name (Docker's format
    /// has one config per entry), the host platform's, so podman load and skopeo docker-archive: read the
    /// amd64 image; index.json keeps the whole index, so ctr import --all-platforms stores the index digest.
    /// </summary>
    [Fact]
    public async Task A_multi_arch_docker_archive_gives_docker_readers_the_host_image_and_ctr_the_whole_index()
    {
        var image = await TestImages.WriteMultiArchAsync(Path.Combine(_work.Path, "multi-src"));
        (await Skopeo.PushAsync(image, Registry, "test/multi-da:1", ["--all"])).EnsureSuccess();
        var reference = $"{Registry.Host}/test/multi-da:1";
        var archive = Path.Combine(_work.Path, "multi-da.tar");
        var (code, output) = await AirlockAsync("images", "save", "--quiet", "-o", archive, reference);
        Assert.True(code == 0, output);

        var inspect = (await Skopeo.RunAsync(["inspect", "--raw", $"docker-archive:{archive}"])).EnsureSuccess();
        var config = (await Skopeo.RunAsync(["inspect", "--config", $"docker-archive:{archive}"])).EnsureSuccess();
        Assert.Equal("amd64", JsonNode.Parse(config.Stdout)!["architecture"]!.GetValue<string>());
        Assert.False(ManifestDocument.Parse(Encoding.UTF8.GetBytes(inspect.Stdout), null).IsIndex);

        using (var podman = new Podman())
        {
            (await podman.RunAsync(["load", "--quiet", "-i", archive])).EnsureSuccess();
            var architecture = (await podman.RunAsync(["image", "inspect", "--format", "{{.Architecture}}", reference])).EnsureSuccess();
            Assert.Equal("amd64", architecture.Stdout.Trim());
        }

        (await Containerd.CtrAsync(["images", "import", "--all-platforms", "--no-unpack", archive])).EnsureSuccess();
        var listing = (await Containerd.CtrAsync(["images", "ls"])).EnsureSuccess();
        Assert.Contains(image.Digest.ToString(), listing.Stdout, StringComparison.Ordinal);
        Assert.Contains("linux/amd64,linux/arm64", listing.Stdout, StringComparison.Ordinal);
    }

    /// <summary>
    /// A signature-like artifact (a manifest whose subject is the image) travels with --include-referrers:
    /// layout → registry (pushed, so the registry's referrers API lists it), registry → archive (an unnamed
    /// index.json entry, kept out of Docker's manifest.json), archive → registry by load (always pushed with
    /// its subject) and back out of the registry; without the flag a copy leaves it behind.
    /// </summary>
    [Fact]
    public async Task Referrers_travel_with_include_referrers_through_registry_archive_and_load()
    {
        var layoutPath = Path.Combine(_work.Path, "signed");
        var image = await TestImages.WriteRunnableAsync(layoutPath);
        var artifact = await AddSignatureAsync(layoutPath, image);
        Assert.Equal(0, (await AirlockAsync("images", "copy", "--quiet", "--include-referrers", $"oci:{layoutPath}:{image.Tag}",
            $"docker://{Registry.Host}/test/signed:1")).Code);

        var archive = Path.Combine(_work.Path, "signed.tar");
        var (code, output) = await AirlockAsync("images", "save", "--quiet", "--include-referrers", "-o", archive, $"{Registry.Host}/test/signed:1");
        Assert.True(code == 0, output);
        var inArchive = Path.Combine(_work.Path, "signed-archive");
        Directory.CreateDirectory(inArchive);
        System.Formats.Tar.TarFile.ExtractToDirectory(archive, inArchive, overwriteFiles: false);
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(inArchive, "index.json")))!["manifests"]!.AsArray();
        Assert.Contains(index, e => e!["digest"]!.GetValue<string>() == artifact.ToString() && e["annotations"] is null);
        var dockerManifest = JsonNode.Parse(File.ReadAllText(Path.Combine(inArchive, "manifest.json")))!.AsArray();
        Assert.Single(dockerManifest);

        (code, output) = await AirlockAsync("images", "load", "--quiet", archive, "--to", $"{Registry.Host}/mirror");
        Assert.True(code == 0, output);
        var withReferrers = Path.Combine(_work.Path, "out-with");
        Assert.Equal(0, (await AirlockAsync("images", "copy", "--quiet", "--include-referrers", $"docker://{Registry.Host}/mirror/test/signed:1", $"oci:{withReferrers}:x")).Code);
        Assert.Contains(OciLayoutStore.Open(withReferrers).Entries, e => e.Digest == artifact);

        var without = Path.Combine(_work.Path, "out-without");
        Assert.Equal(0, (await AirlockAsync("images", "copy", "--quiet", $"docker://{Registry.Host}/mirror/test/signed:1", $"oci:{without}:x")).Code);
        Assert.DoesNotContain(OciLayoutStore.Open(without).Entries, e => e.Digest == artifact);
        Assert.False(File.Exists(Path.Combine(without, "blobs", "sha256", artifact.Encoded)));
    }

    /// <summary>Adds an artifact manifest whose subject is <paramref name="image"/> as an unnamed index.json entry, as oras and cosign write them.</summary>
    private static async Task<Digest> AddSignatureAsync(string layoutPath, TestImage image)
    {
        await using var layout = OciLayoutStore.Open(layoutPath);
        var empty = "{}"u8.ToArray();
        var emptyDescriptor = new Descriptor { MediaType = "application/vnd.oci.empty.v1+json", Digest = Digest.Sha256(empty), Size = empty.Length };
        await layout.WriteBlobAsync(emptyDescriptor, new MemoryStream(empty), CancellationToken.None);
        var signature = Encoding.UTF8.GetBytes("airlock test signature");
        var signatureDescriptor = new Descriptor { MediaType = "application/vnd.example.signature", Digest = Digest.Sha256(signature), Size = signature.Length };
        await layout.WriteBlobAsync(signatureDescriptor, new MemoryStream(signature), CancellationToken.None);
        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciManifest,
            ["artifactType"] = "application/vnd.example.signature",
            ["config"] = new JsonObject { ["mediaType"] = emptyDescriptor.MediaType, ["digest"] = emptyDescriptor.Digest.ToString(), ["size"] = emptyDescriptor.Size },
            ["layers"] = new JsonArray(new JsonObject { ["mediaType"] = signatureDescriptor.MediaType, ["digest"] = signatureDescriptor.Digest.ToString(), ["size"] = signatureDescriptor.Size }),
            ["subject"] = new JsonObject { ["mediaType"] = image.MediaType, ["digest"] = image.Digest.ToString(), ["size"] = image.ManifestBytes.Length },
        }.ToJsonString());
        var descriptor = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Sha256(manifest), Size = manifest.Length };
        await layout.WriteManifestAsync(descriptor, manifest, null, CancellationToken.None);
        await layout.AddEntryAsync(descriptor with { ArtifactType = "application/vnd.example.signature" }, CancellationToken.None);
        return descriptor.Digest;
    }
}
