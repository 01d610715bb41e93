// Ported from the OCI Distribution Specification conformance suite, conformance/04_management_test.go
// (https://github.com/opencontainers/distribution-spec, v1.1 line, Apache License 2.0; see README.md).
// The checks, their order, the content and the accepted answers are upstream's; the code is ours.
using Airlock.Conformance.Tests.Harness;
using Airlock.Conformance.Tests.Suite;
using Xunit.Abstractions;

namespace Airlock.Conformance.Tests.Workflows;

public sealed class ContentManagementWorkflow() : WorkflowFixture(Workflow.ContentManagement)
{
    public string? TagToDelete { get; set; }

    public int NumTags { get; set; }

    public bool BlobDeleteAllowed { get; set; } = true;
}

[CollectionDefinition("Content Management")]
public sealed class ContentManagementCollection : ICollectionFixture<ContentManagementWorkflow>;

[Collection("Content Management")]
[TestCaseOrderer(SpecOrderer.TypeName, SpecOrderer.AssemblyName)]
public sealed class ContentManagementTests
{
    private const string Setup = "Setup";
    private const string ManifestDelete = "Manifest delete";
    private const string BlobDelete = "Blob delete";

    private readonly ContentManagementWorkflow _w;

    public ContentManagementTests(ContentManagementWorkflow workflow, ITestOutputHelper output)
    {
        _w = workflow;
        if (_w.Settings.EnabledWorkflows.Contains(Workflow.ContentManagement))
        {
            _w.Client.Output = output;
        }
    }

    private SuiteData Data => _w.Data;

    [Spec(Workflow.ContentManagement, 1, Setup, "Populate registry with test config blob")]
    public async Task Setup_populate_config() => Expect.Success(await _w.PushBlobAsync(Data.Configs[3]));

    [Spec(Workflow.ContentManagement, 2, Setup, "Populate registry with test layer")]
    public async Task Setup_populate_layer() => Expect.Success(await _w.PushBlobAsync(Data.Layer));

    [Spec(Workflow.ContentManagement, 3, Setup, "Populate registry with test tag")]
    public async Task Setup_populate_tag()
    {
        _w.TagToDelete = SuiteData.TestTagName;
        Expect.Success(await _w.PutManifestAsync(_w.TagToDelete, Data.Manifests[3].Content));
    }

    [Spec(Workflow.ContentManagement, 4, Setup, "Check how many tags there are before anything gets deleted")]
    public async Task Setup_count_tags()
    {
        var response = await _w.GetAsync("/v2/<name>/tags/list");
        Expect.Status(response, 200);
        _w.NumTags = WorkflowFixture.TagsOf(response).Count;
    }

    [Spec(Workflow.ContentManagement, 10, ManifestDelete, "DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)")]
    public async Task Delete_tag_is_202_or_refused()
    {
        var tag = Expect.Prior(_w.TagToDelete, "the tag pushed in setup");
        var response = await _w.DeleteManifestAsync(tag);
        Expect.AnyOf(response, 400, 202, 405);
        if (response.StatusCode == 400)
        {
            var codes = response.ErrorCodes();
            Assert.NotEmpty(codes);
            Assert.Equal("UNSUPPORTED", codes[0]);
        }
    }

    [Spec(Workflow.ContentManagement, 11, ManifestDelete, "DELETE request to manifest (digest) should yield 202 response unless already deleted")]
    public async Task Delete_manifest_by_digest_is_202_or_404() =>
        Expect.AnyOf(await _w.DeleteManifestAsync(Data.Manifests[3].Digest), 202, 404);

    [Spec(Workflow.ContentManagement, 12, ManifestDelete, "GET request to deleted manifest URL should yield 404 response, unless delete is disallowed")]
    public async Task Get_deleted_manifest_is_404_or_200() =>
        Expect.AnyOf(await _w.GetAsync("/v2/<name>/manifests/<reference>", reference: Data.Manifests[3].Digest), 404, 200);

    [Spec(Workflow.ContentManagement, 13, ManifestDelete, "GET request to tags list should reflect manifest deletion")]
    public async Task Tags_list_reflects_deletion()
    {
        var response = await _w.GetAsync("/v2/<name>/tags/list");
        Expect.Status(response, 200);
        Assert.True(WorkflowFixture.TagsOf(response).Count < _w.NumTags,
            $"expected fewer than the {_w.NumTags} tags listed before the deletion, got {response}");
    }

    [Spec(Workflow.ContentManagement, 20, BlobDelete, "DELETE request to blob URL should yield 202 response")]
    public async Task Delete_blobs_is_202()
    {
        Expect.AnyOf(await _w.DeleteBlobAsync(Data.Configs[3].Digest), 202, 404, 405);
        var layer = await _w.DeleteBlobAsync(Data.Layer.Digest);
        Expect.AnyOf(layer, 202, 404, 405);
        if (layer.StatusCode == 405)
        {
            _w.BlobDeleteAllowed = false;
        }
    }

    /// <summary>
    /// Upstream runs this only when the registry allowed the blob deletion and skips it otherwise. Nothing
    /// may be skipped here, so a registry that refuses blob deletion (405) fails it.
    /// </summary>
    [Spec(Workflow.ContentManagement, 21, BlobDelete, "GET request to deleted blob URL should yield 404 response")]
    public async Task Get_deleted_blob_is_404()
    {
        Assert.True(_w.BlobDeleteAllowed,
            "the registry refused to delete a blob (405); upstream would skip this check, which this suite does not allow");
        Expect.Status(await _w.GetAsync("/v2/<name>/blobs/<digest>", digest: Data.Configs[3].Digest), 404);
    }
}
