using System.Collections;
using System.Net;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Cli.Hosting;
using Airlock.Oci;
using Airlock.Tests.Registry;

namespace Airlock.Tests.Bundles;

/// <summary>
/// Names in archives, as the guides produce them: skopeo's <c>oci-archive:FILE:1</c> writes a bare tag as the OCI
/// ref name, which says nothing about the repository. Loading it needs <c>--to</c> with a repository; saving and
/// copying can give the archive the name nodes will ask for (<c>--name</c>, <c>--rewrite</c>).
/// </summary>
public sealed class ArchiveNamingTests : IAsyncLifetime
{
    private readonly TempDirectory _temp = new();
    private TestRegistry _registry = null!;
    private Descriptor _image = null!;
    private Digest _config;

    private string Host => $"127.0.0.1:{_registry.Server.Address.Port}";

    public async Task InitializeAsync()
    {
        _registry = await TestRegistry.StartAsync();
        await using var layout = OciLayoutStore.Create(_temp.File("layout"));
        _image = await TestImages.AddImageAsync(layout, TestImages.Amd64, [TestImages.MakeLayer(61), TestImages.MakeLayer(62)], "app");
        _config = ManifestDocument.Parse((await layout.ReadManifestAsync(_image, CancellationToken.None)).Span, _image.MediaType).Config!.Digest;
    }

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        _temp.Dispose();
    }

    /// <summary>The tag-only archive skopeo writes, as the issue's repro makes it.</summary>
    private async Task<string> SkopeoTagOnlyArchiveAsync()
    {
        var archive = _temp.File("f.tar");
        await SkopeoInteropTests.RunAsync("skopeo", "copy", "--quiet", $"oci:{_temp.File("layout")}:app", $"oci-archive:{archive}:1");
        return archive;
    }

    private static async Task<(int Code, string Output, string Error)> CliAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(args, new Hashtable(), output, error);
        return (code, output.ToString(), error.ToString());
    }

    private async Task<HttpStatusCode> ManifestStatusAsync(string repository, string reference)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, $"/v2/{repository}/manifests/{reference}");
        request.Headers.Accept.ParseAdd(MediaTypes.OciManifest);
        using var response = await _registry.Client.SendAsync(request);
        return response.StatusCode;
    }

    [Fact]
    public async Task A_tag_only_skopeo_archive_loads_as_the_repository_to_names_with_its_tag()
    {
        var archive = await SkopeoTagOnlyArchiveAsync();

        var (code, output, error) = await CliAsync("images", "load", archive, "--to", $"{Host}/team/app");

        Assert.True(code == 0, error);
        Assert.Contains($"{Host}/team/app:1", output, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, await ManifestStatusAsync("team/app", "1"));
    }

    [Fact]
    public async Task A_tag_only_archive_loaded_to_a_bare_registry_is_refused_naming_the_flags_that_fix_it()
    {
        var archive = await SkopeoTagOnlyArchiveAsync();

        var (code, _, error) = await CliAsync("images", "load", archive, "--to", Host);

        Assert.Equal(1, code);
        Assert.Contains(_image.Digest.ToString(), error, StringComparison.Ordinal);
        Assert.Contains("\"1\"", error, StringComparison.Ordinal);
        Assert.Contains($"--to {Host}/REPOSITORY", error, StringComparison.Ordinal);
        Assert.Contains("--name", error, StringComparison.Ordinal);
        Assert.NotEqual(HttpStatusCode.OK, await ManifestStatusAsync("1", "latest"));
    }

    [Fact]
    public async Task An_unnamed_image_is_refused_with_the_flag_and_the_digest_copy_that_fix_it()
    {
        var archive = _temp.File("unnamed.tar");
        await using (var target = ArchiveTarget.Create(archive))
        await using (var layout = OciLayoutStore.Open(_temp.File("layout")))
        {
            await ImageGraph.CopyAsync(layout, target, _image, new CopyOptions(), null, CancellationToken.None);
            target.AddEntry(new Descriptor { MediaType = _image.MediaType, Digest = _image.Digest, Size = _image.Size });
            await target.CompleteAsync(CancellationToken.None);
        }

        var (code, _, error) = await CliAsync("images", "load", archive, "--to", $"{Host}/team/app");

        Assert.Equal(1, code);
        Assert.Contains("has no name", error, StringComparison.Ordinal);
        Assert.Contains("--name", error, StringComparison.Ordinal);
        Assert.Contains($"oci-archive:{archive}:{_image.Digest}", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Save_with_name_gives_a_tag_only_source_the_name_nodes_ask_for()
    {
        var archive = await SkopeoTagOnlyArchiveAsync();
        var named = _temp.File("named.tar");

        var (code, _, error) = await CliAsync("images", "save", "-o", named, "--name", "ghcr.io/canonical/k8s-snap/pause:3.10", $"oci-archive:{archive}:1");

        Assert.True(code == 0, error);
        await using var read = await ArchiveSource.OpenAsync(named, null, CancellationToken.None);
        var entry = Assert.Single(read.Entries);
        Assert.Equal("ghcr.io/canonical/k8s-snap/pause:3.10", OciLayoutStore.NameOf(entry));
        Assert.Equal(_image.Digest, entry.Digest);

        // Loaded as any full name is: the registry host replaced, the repository path kept.
        (code, _, error) = await CliAsync("images", "load", named, "--to", Host);
        Assert.True(code == 0, error);
        Assert.Equal(HttpStatusCode.OK, await ManifestStatusAsync("canonical/k8s-snap/pause", "3.10"));
    }

    [Fact]
    public async Task Saving_under_a_bare_tag_warns_with_the_flag_that_names_it()
    {
        var (code, _, error) = await CliAsync("images", "save", "-o", _temp.File("bare.tar"), "-q", $"oci:{_temp.File("layout")}:app");
        Assert.Equal(0, code);
        Assert.Contains("bare tag \"app\"", error, StringComparison.Ordinal);
        Assert.Contains("--name REGISTRY/REPOSITORY:app", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Name_is_for_one_image_only()
    {
        var (code, _, error) = await CliAsync("images", "save", "-o", _temp.File("two.tar"), "--name", "registry.local/a:1", "busybox:1", "alpine:3");
        Assert.Equal(2, code);
        Assert.Contains("--rewrite", error, StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.File("two.tar")));
    }

    [Fact]
    public async Task Save_rewrite_renames_the_staging_registry_to_the_name_nodes_ask_for()
    {
        await using (var layout = OciLayoutStore.Open(_temp.File("layout")))
        {
            await layout.AddEntryAsync(OciLayoutStore.NamedEntry(_image, "staging.local:5000/rancher/mirrored-pause:3.6"), CancellationToken.None);
        }

        var archive = _temp.File("rewritten.tar");
        var (code, _, error) = await CliAsync("images", "save", "-o", archive, "--rewrite", "staging.local:5000/rancher=docker.io/rancher",
            $"oci:{_temp.File("layout")}:staging.local:5000/rancher/mirrored-pause:3.6");

        Assert.True(code == 0, error);
        await using var read = await ArchiveSource.OpenAsync(archive, null, CancellationToken.None);
        Assert.Equal("docker.io/rancher/mirrored-pause:3.6", OciLayoutStore.NameOf(Assert.Single(read.Entries)));
    }

    [Fact]
    public async Task Copy_with_name_names_the_image_in_the_destination_archive_and_skopeo_reads_it_so()
    {
        var archive = await SkopeoTagOnlyArchiveAsync();
        var named = _temp.File("copied.tar");

        var (code, _, error) = await CliAsync("images", "copy", "--name", "docker.io/library/busybox:1.36", $"oci-archive:{archive}:1", $"docker-archive:{named}");

        Assert.True(code == 0, error);
        // skopeo finds the image by that name in Docker's manifest.json.
        await SkopeoInteropTests.RunAsync("skopeo", "copy", "--quiet", $"docker-archive:{named}:docker.io/library/busybox:1.36", $"oci:{_temp.File("back")}:back");
        await using (var back = OciLayoutStore.Open(_temp.File("back")))
        {
            var root = await back.ResolveAsync("back", CancellationToken.None);
            Assert.Equal(_config, ManifestDocument.Parse((await back.ReadManifestAsync(root, CancellationToken.None)).Span, root.MediaType).Config!.Digest);
        }

        (code, _, error) = await CliAsync("images", "copy", "--name", "x.local/a:1", $"oci-archive:{archive}:1", $"docker://{Host}/a:1");
        Assert.Equal(2, code);
        Assert.Contains("in a registry the destination", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Images_list_given_an_archive_lists_it_instead_of_parsing_it_as_yaml()
    {
        var archive = await SkopeoTagOnlyArchiveAsync();

        var (code, output, error) = await CliAsync("images", "list", archive, "--output", "table");

        Assert.True(code == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("NAME", lines[0], StringComparison.Ordinal);
        Assert.Contains("PLATFORMS", lines[0], StringComparison.Ordinal);
        Assert.Contains(_image.Digest.ToString(), lines[1], StringComparison.Ordinal);
        Assert.Contains("linux/amd64", lines[1], StringComparison.Ordinal);

        // An OCI layout directory too; among manifests, an archive is a usage error saying what to do.
        (code, output, _) = await CliAsync("images", "list", _temp.File("layout"));
        Assert.Equal(0, code);
        Assert.Contains("app\t" + _image.Digest, output, StringComparison.Ordinal);
        File.WriteAllText(_temp.File("pod.yaml"), "kind: Pod\nspec: { containers: [{ image: a:1 }] }\n");
        (code, _, error) = await CliAsync("images", "list", _temp.File("pod.yaml"), archive);
        Assert.Equal(2, code);
        Assert.Contains("is an image archive", error, StringComparison.Ordinal);
    }
}
