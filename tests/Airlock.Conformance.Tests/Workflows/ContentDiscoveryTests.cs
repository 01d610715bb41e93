// Ported from the OCI Distribution Specification conformance suite, conformance/03_discovery_test.go
// (https://github.com/opencontainers/distribution-spec, v1.1 line, Apache License 2.0; see README.md).
// The checks, their order, the content and the accepted answers are upstream's; the code is ours.
using System.Globalization;
using System.Text.Json;
using Airlock.Conformance.Tests.Harness;
using Airlock.Conformance.Tests.Suite;
using Xunit.Abstractions;

namespace Airlock.Conformance.Tests.Workflows;

public sealed class ContentDiscoveryWorkflow() : WorkflowFixture(Workflow.ContentDiscovery)
{
    /// <summary>Upstream starts from the four tags it pushes and then counts what the registry lists.</summary>
    public int NumTags { get; set; } = 4;

    public List<string> TagList { get; set; } = [];
}

[CollectionDefinition("Content Discovery")]
public sealed class ContentDiscoveryCollection : ICollectionFixture<ContentDiscoveryWorkflow>;

[Collection("Content Discovery")]
[TestCaseOrderer(SpecOrderer.TypeName, SpecOrderer.AssemblyName)]
public sealed class ContentDiscoveryTests
{
    private const string Setup = "Setup";
    private const string Tags = "Test content discovery endpoints (listing tags)";
    private const string References = "Test content discovery endpoints (listing references)";
    private const string Teardown = "Teardown";

    private readonly ContentDiscoveryWorkflow _w;
    private readonly ITestOutputHelper _output;

    public ContentDiscoveryTests(ContentDiscoveryWorkflow workflow, ITestOutputHelper output)
    {
        _w = workflow;
        _output = output;
        if (_w.Settings.EnabledWorkflows.Contains(Workflow.ContentDiscovery))
        {
            _w.Client.Output = output;
        }
    }

    private SuiteData Data => _w.Data;

    private RegistryClient Client => _w.Client;

    [Spec(Workflow.ContentDiscovery, 1, Setup, "Populate registry with test blob")]
    public async Task Setup_populate_config() => Expect.Success(await _w.PushBlobAsync(Data.Configs[2]));

    [Spec(Workflow.ContentDiscovery, 2, Setup, "Populate registry with test layer")]
    public async Task Setup_populate_layer() => Expect.Success(await _w.PushBlobAsync(Data.Layer));

    [Spec(Workflow.ContentDiscovery, 3, Setup, "Populate registry with test tags")]
    public async Task Setup_populate_tags()
    {
        for (var i = 0; i < _w.NumTags; i++)
        {
            Expect.Success(await _w.PutManifestAsync($"test{i}", Data.Manifests[2].Content));
        }

        _w.TagList = WorkflowFixture.TagsOf(await _w.GetAsync("/v2/<name>/tags/list"));
    }

    [Spec(Workflow.ContentDiscovery, 4, Setup, "References setup")]
    public async Task Setup_references()
    {
        var subject = Data.Manifests[4];
        Assert.Equal(SuiteData.EmptyJsonDigest, Data.EmptyJsonDescriptorDigest);
        Expect.Success(await _w.PushBlobAsync(TestBlob.Of(Data.EmptyJsonBlob)));

        // Referrers pushed before their subject exists.
        Expect.Success(await _w.PushBlobAsync(Data.TestRefBlobA));
        await PutReferrer(Data.RefsManifestAConfigArtifact, SuiteData.ImageManifestMediaType, subject.Digest);
        await PutReferrer(Data.RefsManifestALayerArtifact, SuiteData.ImageManifestMediaType, subject.Digest);
        await PutReferrer(Data.RefsIndexArtifact, SuiteData.ImageIndexMediaType, subject.Digest);

        // The subject itself.
        Expect.Success(await _w.PushBlobAsync(Data.Configs[4]));
        Expect.Success(await _w.PushBlobAsync(Data.Layer));
        Expect.Success(await _w.PutManifestAsync(SuiteData.TestTagName, subject.Content));

        // Referrers pushed after their subject.
        Expect.Success(await _w.PushBlobAsync(Data.TestRefBlobB));
        await PutReferrer(Data.RefsManifestBConfigArtifact, SuiteData.ImageManifestMediaType, subject.Digest);
        await PutReferrer(Data.RefsManifestBLayerArtifact, SuiteData.ImageManifestMediaType, subject.Digest);

        // A referrer whose subject is never pushed.
        await PutReferrer(Data.RefsManifestCLayerArtifact, SuiteData.ImageManifestMediaType, Data.Manifests[3].Digest);
    }

    [Spec(Workflow.ContentDiscovery, 10, Tags, "GET request to list tags should yield 200 response")]
    public async Task List_tags_is_200()
    {
        var response = await _w.GetAsync("/v2/<name>/tags/list");
        Expect.Status(response, 200);
        _w.TagList = WorkflowFixture.TagsOf(response);
        _w.NumTags = _w.TagList.Count;
    }

    [Spec(Workflow.ContentDiscovery, 11, Tags, "GET number of tags should be limitable by `n` query parameter")]
    public async Task List_tags_is_limited_by_n()
    {
        var numResults = _w.NumTags / 2;
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Get, "/v2/<name>/tags/list")
            .WithQuery("n", numResults.ToString(CultureInfo.InvariantCulture)));
        Expect.Status(response, 200);
        _w.TagList = WorkflowFixture.TagsOf(response);
        Assert.Equal(numResults, _w.TagList.Count);
    }

    [Spec(Workflow.ContentDiscovery, 12, Tags, "GET start of tag is set by `last` query parameter")]
    public async Task List_tags_starts_after_last()
    {
        var numResults = _w.NumTags / 2;
        var n = numResults.ToString(CultureInfo.InvariantCulture);
        var firstPage = await Client.SendAsync(Client.NewRequest(HttpMethod.Get, "/v2/<name>/tags/list").WithQuery("n", n));
        _w.TagList = WorkflowFixture.TagsOf(firstPage);
        Assert.True(_w.TagList.Count >= numResults, $"expected {numResults} tags on the first page, got {firstPage}");
        var last = _w.TagList[numResults - 1];
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Get, "/v2/<name>/tags/list").WithQuery("n", n).WithQuery("last", last));
        Expect.Status(response, 200);
        // Upstream asserts on the first page here (it does not re-read the list from this answer); kept as is.
        Assert.True(_w.TagList.Count <= numResults, $"expected at most {numResults} tags, got {_w.TagList.Count}");
        Assert.Contains(last, _w.TagList);
    }

    [Spec(Workflow.ContentDiscovery, 20, References, "GET request to nonexistent blob should result in empty 200 response")]
    public async Task Referrers_of_unknown_digest_is_empty_index()
    {
        var response = await _w.GetAsync("/v2/<name>/referrers/<digest>", digest: Data.DummyDigest);
        Expect.Status(response, 200);
        Expect.Header(response, "Content-Type", SuiteData.ImageIndexMediaType);
        Assert.Empty(Referrers(response));
    }

    [Spec(Workflow.ContentDiscovery, 21, References, "GET request to existing blob should yield 200")]
    public async Task Referrers_of_subject_lists_all_five()
    {
        var response = await _w.GetAsync("/v2/<name>/referrers/<digest>", digest: Data.Manifests[4].Digest);
        Expect.Status(response, 200);
        Expect.Header(response, "Content-Type", SuiteData.ImageIndexMediaType);
        var referrers = Referrers(response);
        Assert.Equal(5, referrers.Count);
        Assert.NotEqual(referrers[0].Digest, referrers[1].Digest);
        AssertAnnotationsCarried(referrers);
    }

    [Spec(Workflow.ContentDiscovery, 22, References, "GET request to existing blob with filter should yield 200")]
    public async Task Referrers_filtered_by_artifact_type()
    {
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Get, "/v2/<name>/referrers/<digest>", digest: Data.Manifests[4].Digest)
            .WithQuery("artifactType", SuiteData.TestRefArtifactTypeA));
        Expect.Status(response, 200);
        Expect.Header(response, "Content-Type", SuiteData.ImageIndexMediaType);
        var referrers = Referrers(response);
        if (response.Header("OCI-Filters-Applied").Length > 0)
        {
            Assert.Equal(2, referrers.Count);
            Expect.Header(response, "OCI-Filters-Applied", SuiteData.ArtifactTypeFilter);
        }
        else
        {
            Assert.Equal(5, referrers.Count);
            // Upstream only warns: filtering is optional.
            _output.WriteLine("WARNING: filtering by artifact-type is not implemented");
        }

        AssertAnnotationsCarried(referrers);
    }

    [Spec(Workflow.ContentDiscovery, 23, References, "GET request to missing manifest should yield 200")]
    public async Task Referrers_of_missing_subject_lists_its_referrer()
    {
        var response = await _w.GetAsync("/v2/<name>/referrers/<digest>", digest: Data.Manifests[3].Digest);
        Expect.Status(response, 200);
        Expect.Header(response, "Content-Type", SuiteData.ImageIndexMediaType);
        var referrers = Referrers(response);
        Assert.Single(referrers);
        Assert.Equal(Data.RefsManifestCLayerArtifact.Digest, referrers[0].Digest);
    }

    [Spec(Workflow.ContentDiscovery, 30, Teardown, "Delete created manifest & associated tags", StepWhenBlobsDeletedFirst = 33)]
    public async Task Teardown_delete_manifests_and_tags()
    {
        string[] references =
        [
            Data.RefsIndexArtifact.Digest, Data.Manifests[2].Digest, Data.Manifests[4].Digest,
            Data.RefsManifestAConfigArtifact.Digest, Data.RefsManifestALayerArtifact.Digest, SuiteData.TestTagName,
            Data.RefsManifestBConfigArtifact.Digest, Data.RefsManifestBLayerArtifact.Digest, Data.RefsManifestCLayerArtifact.Digest,
        ];
        foreach (var reference in references)
        {
            Expect.SuccessOr(await _w.DeleteManifestAsync(reference), 404, 405);
        }
    }

    [Spec(Workflow.ContentDiscovery, 31, Teardown, "Delete config blob created in tests")]
    public async Task Teardown_delete_config() => Expect.SuccessOr(await _w.DeleteBlobAsync(Data.Configs[2].Digest), 405);

    [Spec(Workflow.ContentDiscovery, 32, Teardown, "Delete layer blob created in setup")]
    public async Task Teardown_delete_layer() => Expect.SuccessOr(await _w.DeleteBlobAsync(Data.Layer.Digest), 405);

    [Spec(Workflow.ContentDiscovery, 34, Teardown, "References teardown")]
    public async Task Teardown_references()
    {
        string[] referrers =
        [
            Data.RefsIndexArtifact.Digest, Data.RefsManifestAConfigArtifact.Digest, Data.RefsManifestALayerArtifact.Digest,
            Data.Manifests[4].Digest, Data.RefsManifestBConfigArtifact.Digest, Data.RefsManifestBLayerArtifact.Digest,
        ];
        if (_w.Settings.DeleteManifestBeforeBlobs)
        {
            await DeleteManifests(referrers);
        }

        foreach (var blob in new[] { Data.Configs[4].Digest, Data.TestRefBlobA.Digest, Data.TestRefBlobB.Digest, Data.EmptyJsonDescriptorDigest })
        {
            Expect.SuccessOr(await _w.DeleteBlobAsync(blob), 404, 405);
        }

        if (!_w.Settings.DeleteManifestBeforeBlobs)
        {
            await DeleteManifests(referrers);
        }
    }

    private async Task DeleteManifests(IEnumerable<string> digests)
    {
        foreach (var digest in digests)
        {
            Expect.SuccessOr(await _w.DeleteManifestAsync(digest), 404, 405);
        }
    }

    private async Task PutReferrer(TestBlob manifest, string mediaType, string expectedSubject)
    {
        var response = await _w.PutManifestAsync(manifest.Digest, manifest.Content, mediaType);
        Expect.Success(response);
        Expect.Header(response, "OCI-Subject", expectedSubject);
    }

    private void AssertAnnotationsCarried(IReadOnlyList<Referrer> referrers)
    {
        foreach (var referrer in referrers)
        {
            Assert.Single(referrer.Annotations);
            Assert.Equal(
                Data.TestAnnotationValues.GetValueOrDefault(referrer.Digest),
                referrer.Annotations.GetValueOrDefault(SuiteData.TestAnnotationKey));
        }
    }

    private sealed record Referrer(string Digest, IReadOnlyDictionary<string, string> Annotations);

    /// <summary>The <c>manifests</c> of the image index a referrers request answers with.</summary>
    private static List<Referrer> Referrers(RegistryResponse response)
    {
        using var document = JsonDocument.Parse(response.Body);
        if (!document.RootElement.TryGetProperty("manifests", out var manifests) || manifests.ValueKind != JsonValueKind.Array)
        {
            return [];
        }

        return manifests.EnumerateArray().Select(m => new Referrer(
            m.GetProperty("digest").GetString() ?? string.Empty,
            m.TryGetProperty("annotations", out var annotations) && annotations.ValueKind == JsonValueKind.Object
                ? annotations.EnumerateObject().ToDictionary(a => a.Name, a => a.Value.GetString() ?? string.Empty, StringComparer.Ordinal)
                : new Dictionary<string, string>(StringComparer.Ordinal))).ToList();
    }
}
