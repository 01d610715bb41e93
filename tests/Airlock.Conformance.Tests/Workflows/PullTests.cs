// Ported from the OCI Distribution Specification conformance suite, conformance/01_pull_test.go
// (https://github.com/opencontainers/distribution-spec, v1.1 line, Apache License 2.0; see README.md).
// The checks, their order, the content and the accepted answers are upstream's; the code is ours.
using Airlock.Conformance.Tests.Harness;
using Airlock.Conformance.Tests.Suite;
using Xunit.Abstractions;

namespace Airlock.Conformance.Tests.Workflows;

public sealed class PullWorkflow() : WorkflowFixture(Workflow.Pull)
{
    /// <summary>The tag the setup pushed manifest slot 0 under.</summary>
    public string? Tag { get; set; }
}

[CollectionDefinition("Pull")]
public sealed class PullCollection : ICollectionFixture<PullWorkflow>;

[Collection("Pull")]
[TestCaseOrderer(SpecOrderer.TypeName, SpecOrderer.AssemblyName)]
public sealed class PullTests
{
    private const string Setup = "Setup";
    private const string PullBlobs = "Pull blobs";
    private const string PullManifests = "Pull manifests";
    private const string ErrorCodes = "Error codes";
    private const string Teardown = "Teardown";

    private readonly PullWorkflow _w;

    public PullTests(PullWorkflow workflow, ITestOutputHelper output)
    {
        _w = workflow;
        if (_w.Settings.EnabledWorkflows.Contains(Workflow.Pull))
        {
            _w.Client.Output = output;
        }
    }

    private SuiteData Data => _w.Data;

    [Spec(Workflow.Pull, 1, Setup, "Populate registry with test blob (config[0])")]
    public async Task Setup_populate_config0() => Expect.Success(await _w.PushBlobAsync(Data.Configs[0]));

    [Spec(Workflow.Pull, 2, Setup, "Populate registry with test blob (config[1])")]
    public async Task Setup_populate_config1() => Expect.Success(await _w.PushBlobAsync(Data.Configs[1]));

    [Spec(Workflow.Pull, 3, Setup, "Populate registry with test layer")]
    public async Task Setup_populate_layer() => Expect.Success(await _w.PushBlobAsync(Data.Layer));

    [Spec(Workflow.Pull, 4, Setup, "Populate registry with test manifest (manifest[0] by tag)")]
    public async Task Setup_populate_manifest0_by_tag()
    {
        _w.Tag = SuiteData.TestTagName;
        Expect.Success(await _w.PutManifestAsync(_w.Tag, Data.Manifests[0].Content));
    }

    [Spec(Workflow.Pull, 5, Setup, "Populate registry with test manifest (manifest[1] by digest)")]
    public async Task Setup_populate_manifest1_by_digest() =>
        Expect.Success(await _w.PutManifestAsync(Data.Manifests[1].Digest, Data.Manifests[1].Content));

    [Spec(Workflow.Pull, 10, PullBlobs, "HEAD request to nonexistent blob should result in 404 response")]
    public async Task Head_nonexistent_blob_is_404()
    {
        var response = await _w.Client.SendAsync(_w.Client.NewRequest(HttpMethod.Head, "/v2/<name>/blobs/<digest>", digest: Data.DummyDigest));
        Expect.Status(response, 404);
    }

    [Spec(Workflow.Pull, 11, PullBlobs, "HEAD request to existing blob should yield 200")]
    public async Task Head_existing_blob_is_200()
    {
        var response = await _w.Client.SendAsync(_w.Client.NewRequest(HttpMethod.Head, "/v2/<name>/blobs/<digest>", digest: Data.Configs[0].Digest));
        Expect.Status(response, 200);
        OptionalDigestHeader(response, Data.Configs[0].Digest);
    }

    [Spec(Workflow.Pull, 12, PullBlobs, "GET nonexistent blob should result in 404 response")]
    public async Task Get_nonexistent_blob_is_404() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/blobs/<digest>", digest: Data.DummyDigest), 404);

    [Spec(Workflow.Pull, 13, PullBlobs, "GET request to existing blob URL should yield 200")]
    public async Task Get_existing_blob_is_200() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/blobs/<digest>", digest: Data.Configs[0].Digest), 200);

    [Spec(Workflow.Pull, 20, PullManifests, "HEAD request to nonexistent manifest should return 404")]
    public async Task Head_nonexistent_manifest_is_404()
    {
        var response = await _w.Client.SendAsync(_w.Client.NewRequest(HttpMethod.Head, "/v2/<name>/manifests/<reference>", reference: SuiteData.NonexistentManifest));
        Expect.Status(response, 404);
    }

    [Spec(Workflow.Pull, 21, PullManifests, "HEAD request to manifest[0] path (digest) should yield 200 response")]
    public async Task Head_manifest0_by_digest_is_200() => await HeadManifest(Data.Manifests[0].Digest, Data.Manifests[0].Digest);

    [Spec(Workflow.Pull, 22, PullManifests, "HEAD request to manifest[1] path (digest) should yield 200 response")]
    public async Task Head_manifest1_by_digest_is_200() => await HeadManifest(Data.Manifests[1].Digest, Data.Manifests[1].Digest);

    [Spec(Workflow.Pull, 23, PullManifests, "HEAD request to manifest path (tag) should yield 200 response")]
    public async Task Head_manifest_by_tag_is_200()
    {
        var tag = Expect.Prior(_w.Tag, "the tag pushed in setup");
        await HeadManifest(tag, Data.Manifests[0].Digest);
    }

    [Spec(Workflow.Pull, 24, PullManifests, "GET nonexistent manifest should return 404")]
    public async Task Get_nonexistent_manifest_is_404() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/manifests/<reference>", reference: SuiteData.NonexistentManifest), 404);

    [Spec(Workflow.Pull, 25, PullManifests, "GET request to manifest[0] path (digest) should yield 200 response")]
    public async Task Get_manifest0_by_digest_is_200() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/manifests/<reference>", reference: Data.Manifests[0].Digest, accept: SuiteData.ImageManifestMediaType), 200);

    [Spec(Workflow.Pull, 26, PullManifests, "GET request to manifest[1] path (digest) should yield 200 response")]
    public async Task Get_manifest1_by_digest_is_200() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/manifests/<reference>", reference: Data.Manifests[1].Digest, accept: SuiteData.ImageManifestMediaType), 200);

    [Spec(Workflow.Pull, 27, PullManifests, "GET request to manifest path (tag) should yield 200 response")]
    public async Task Get_manifest_by_tag_is_200()
    {
        var tag = Expect.Prior(_w.Tag, "the tag pushed in setup");
        Expect.Status(await _w.GetAsync("/v2/<name>/manifests/<reference>", reference: tag, accept: SuiteData.ImageManifestMediaType), 200);
    }

    [Spec(Workflow.Pull, 30, ErrorCodes, "400 response body should contain OCI-conforming JSON message")]
    public async Task Bad_reference_answers_400_with_OCI_error_body_or_404()
    {
        // Upstream sends a GET with a body and a malformed digest as the reference.
        var response = await _w.Client.SendAsync(_w.Client.NewRequest(HttpMethod.Get, "/v2/<name>/manifests/<reference>", reference: "sha256:totallywrong")
            .WithHeader("Content-Type", SuiteData.ImageManifestMediaType)
            .WithBody(Data.InvalidManifestContent));
        Expect.AnyOf(response, 400, 404);
        if (response.StatusCode == 400)
        {
            var codes = response.ErrorCodes();
            Assert.NotEmpty(codes);
            Assert.Contains(codes[0], SuiteData.ErrorCodes);
        }
    }

    [Spec(Workflow.Pull, 40, Teardown, "Delete manifest[0] created in setup", StepWhenBlobsDeletedFirst = 46)]
    public async Task Teardown_delete_manifest0() => Expect.SuccessOr(await _w.DeleteManifestAsync(Data.Manifests[0].Digest), 405);

    [Spec(Workflow.Pull, 41, Teardown, "Delete manifest[1] created in setup", StepWhenBlobsDeletedFirst = 47)]
    public async Task Teardown_delete_manifest1() => Expect.SuccessOr(await _w.DeleteManifestAsync(Data.Manifests[1].Digest), 405);

    [Spec(Workflow.Pull, 42, Teardown, "Delete config[0] blob created in setup")]
    public async Task Teardown_delete_config0() => Expect.SuccessOr(await _w.DeleteBlobAsync(Data.Configs[0].Digest), 404, 405);

    [Spec(Workflow.Pull, 43, Teardown, "Delete config[1] blob created in setup")]
    public async Task Teardown_delete_config1() => Expect.SuccessOr(await _w.DeleteBlobAsync(Data.Configs[1].Digest), 404, 405);

    [Spec(Workflow.Pull, 44, Teardown, "Delete layer blob created in setup")]
    public async Task Teardown_delete_layer() => Expect.SuccessOr(await _w.DeleteBlobAsync(Data.Layer.Digest), 404, 405);

    private async Task HeadManifest(string reference, string expectedDigest)
    {
        var response = await _w.Client.SendAsync(_w.Client.NewRequest(HttpMethod.Head, "/v2/<name>/manifests/<reference>", reference: reference)
            .WithHeader("Accept", SuiteData.ImageManifestMediaType));
        Expect.Status(response, 200);
        OptionalDigestHeader(response, expectedDigest);
    }

    /// <summary>Docker-Content-Digest is optional, but when present it must be the content's digest.</summary>
    private static void OptionalDigestHeader(RegistryResponse response, string expected)
    {
        if (response.Header("Docker-Content-Digest") is { Length: > 0 })
        {
            Expect.Header(response, "Docker-Content-Digest", expected);
        }
    }
}
