// Ported from the OCI Distribution Specification conformance suite, conformance/02_push_test.go
// (https://github.com/opencontainers/distribution-spec, v1.1 line, Apache License 2.0; see README.md).
// The checks, their order, the content and the accepted answers are upstream's; the code is ours.
using System.Globalization;
using Airlock.Conformance.Tests.Harness;
using Airlock.Conformance.Tests.Suite;
using Xunit.Abstractions;

namespace Airlock.Conformance.Tests.Workflows;

public sealed class PushWorkflow() : WorkflowFixture(Workflow.Push)
{
    public RegistryResponse? LastResponse { get; set; }

    /// <summary>The session opened for the chunked upload, whose Location goes stale after the first chunk.</summary>
    public RegistryResponse? PrevResponse { get; set; }

    /// <summary>The answer to the cross-repository mount, which decides what the following mount checks expect.</summary>
    public RegistryResponse? MountResponse { get; set; }

    public string EmptyLayerManifestRef { get; set; } = string.Empty;

    /// <summary>Rebuilt larger when the registry announces a minimum chunk size (OCI-Chunk-Min-Length).</summary>
    internal ChunkedBlob? ChunkedBlob { get; set; }
}

[CollectionDefinition("Push")]
public sealed class PushCollection : ICollectionFixture<PushWorkflow>;

[Collection("Push")]
[TestCaseOrderer(SpecOrderer.TypeName, SpecOrderer.AssemblyName)]
public sealed class PushTests
{
    private const string Streamed = "Blob Upload Streamed";
    private const string Monolithic = "Blob Upload Monolithic";
    private const string Chunked = "Blob Upload Chunked";
    private const string Mount = "Cross-Repository Blob Mount";
    private const string ManifestUpload = "Manifest Upload";
    private const string Teardown = "Teardown";
    private const string OctetStream = "application/octet-stream";

    private readonly PushWorkflow _w;
    private readonly ITestOutputHelper _output;

    public PushTests(PushWorkflow workflow, ITestOutputHelper output)
    {
        _w = workflow;
        _output = output;
        if (_w.Settings.EnabledWorkflows.Contains(Workflow.Push))
        {
            _w.Client.Output = output;
        }
    }

    private SuiteData Data => _w.Data;

    private RegistryClient Client => _w.Client;

    private string CrossmountNamespace => _w.Settings.CrossmountNamespace;

    private ChunkedBlob Chunks => _w.ChunkedBlob ??= Data.TestBlobB;

    [Spec(Workflow.Push, 1, Streamed, "PATCH request with blob in body should yield 202 response")]
    public async Task Streamed_patch_with_whole_blob_is_202()
    {
        var session = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/"));
        Expect.HeaderPresent(session, "Location");
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Patch, session.RelativeLocation())
            .WithHeader("Content-Type", OctetStream)
            .WithBody(Data.TestBlobA.Content));
        Expect.Status(response, 202);
        _w.LastResponse = response;
    }

    [Spec(Workflow.Push, 2, Streamed, "PUT request to session URL with digest should yield 201 response")]
    public async Task Streamed_put_with_digest_is_201()
    {
        var last = Expect.Prior(_w.LastResponse, "the streamed upload session");
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Put, last.RelativeLocation())
            .WithQuery("digest", Data.TestBlobA.Digest)
            .WithHeader("Content-Type", OctetStream)
            .WithHeader("Content-Length", Data.TestBlobA.ContentLength));
        Expect.Status(response, 201);
        Expect.HeaderPresent(response, "Location");
    }

    [Spec(Workflow.Push, 10, Monolithic, "GET nonexistent blob should result in 404 response")]
    public async Task Get_nonexistent_blob_is_404() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/blobs/<digest>", digest: Data.DummyDigest), 404);

    [Spec(Workflow.Push, 11, Monolithic, "POST request with digest and blob should yield a 201 or 202")]
    public async Task Post_with_digest_and_blob_is_201_or_202()
    {
        var config = Data.Configs[1];
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/")
            .WithHeader("Content-Length", config.ContentLength)
            .WithHeader("Content-Type", OctetStream)
            .WithQuery("digest", config.Digest)
            .WithBody(config.Content));
        Expect.HeaderPresent(response, "Location");
        Expect.AnyOf(response, 201, 202);
        _w.LastResponse = response;
    }

    [Spec(Workflow.Push, 12, Monolithic, "GET request to blob URL from prior request should yield 200 or 404 based on response code")]
    public async Task Get_blob_after_monolithic_post_matches_its_answer()
    {
        var last = Expect.Prior(_w.LastResponse, "the monolithic POST answer");
        var response = await _w.GetAsync("/v2/<name>/blobs/<digest>", digest: Data.Configs[1].Digest);
        Expect.Status(response, last.StatusCode == 202 ? 404 : 200);
    }

    [Spec(Workflow.Push, 13, Monolithic, "POST request should yield a session ID")]
    public async Task Post_opens_a_session()
    {
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/"));
        Expect.Status(response, 202);
        _w.LastResponse = response;
    }

    [Spec(Workflow.Push, 14, Monolithic, "PUT upload of a blob should yield a 201 Response")]
    public async Task Put_blob_to_session_is_201()
    {
        var last = Expect.Prior(_w.LastResponse, "the upload session");
        var config = Data.Configs[1];
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Put, last.RelativeLocation())
            .WithHeader("Content-Length", config.ContentLength)
            .WithHeader("Content-Type", OctetStream)
            .WithQuery("digest", config.Digest)
            .WithBody(config.Content));
        Expect.HeaderPresent(response, "Location");
        Expect.Status(response, 201);
    }

    [Spec(Workflow.Push, 15, Monolithic, "GET request to existing blob should yield 200 response")]
    public async Task Get_uploaded_blob_is_200() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/blobs/<digest>", digest: Data.Configs[1].Digest), 200);

    [Spec(Workflow.Push, 16, Monolithic, "PUT upload of a layer blob should yield a 201 Response")]
    public async Task Put_layer_is_201()
    {
        var session = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/"));
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Put, session.RelativeLocation())
            .WithHeader("Content-Length", Data.Layer.ContentLength)
            .WithHeader("Content-Type", OctetStream)
            .WithQuery("digest", Data.Layer.Digest)
            .WithBody(Data.Layer.Content));
        Expect.HeaderPresent(response, "Location");
        Expect.Status(response, 201);
    }

    [Spec(Workflow.Push, 17, Monolithic, "GET request to existing layer should yield 200 response")]
    public async Task Get_uploaded_layer_is_200() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/blobs/<digest>", digest: Data.Layer.Digest), 200);

    [Spec(Workflow.Push, 20, Chunked, "Out-of-order blob upload should return 416")]
    public async Task Out_of_order_chunk_is_416()
    {
        var session = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/").WithHeader("Content-Length", "0"));
        Expect.HeaderPresent(session, "Location");

        // A registry may demand bigger chunks; the blob is then rebuilt so that its first chunk is big enough.
        if (session.Header("OCI-Chunk-Min-Length") is { Length: > 0 } minimum)
        {
            Assert.True(int.TryParse(minimum, NumberStyles.None, CultureInfo.InvariantCulture, out var minSize),
                $"OCI-Chunk-Min-Length \"{minimum}\" is not a number");
            if (minSize > Chunks.Chunk1.Length)
            {
                _w.ChunkedBlob = ChunkedBlob.Create(minSize * 2 - 2, Data.Seed + 2);
            }
        }

        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Patch, session.RelativeLocation())
            .WithHeader("Content-Type", OctetStream)
            .WithHeader("Content-Length", Chunks.Chunk2Length)
            .WithHeader("Content-Range", Chunks.Chunk2Range)
            .WithBody(Chunks.Chunk2));
        Expect.Status(response, 416);
    }

    [Spec(Workflow.Push, 21, Chunked, "PATCH request with first chunk should return 202")]
    public async Task First_chunk_is_202_with_range()
    {
        var session = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/").WithHeader("Content-Length", "0"));
        Expect.HeaderPresent(session, "Location");
        _w.PrevResponse = session;
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Patch, session.RelativeLocation())
            .WithHeader("Content-Type", OctetStream)
            .WithHeader("Content-Length", Chunks.Chunk1Length)
            .WithHeader("Content-Range", Chunks.Chunk1Range)
            .WithBody(Chunks.Chunk1));
        Expect.Status(response, 202);
        Expect.Header(response, "Range", Chunks.Chunk1Range);
        _w.LastResponse = response;
    }

    [Spec(Workflow.Push, 22, Chunked, "Retry previous blob chunk should return 416")]
    public async Task Retried_chunk_is_416()
    {
        var previous = Expect.Prior(_w.PrevResponse, "the chunked upload session");
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Patch, previous.RelativeLocation())
            .WithHeader("Content-Type", OctetStream)
            .WithHeader("Content-Length", Chunks.Chunk1Length)
            .WithHeader("Content-Range", Chunks.Chunk1Range)
            .WithBody(Chunks.Chunk1));
        Expect.Status(response, 416);
    }

    [Spec(Workflow.Push, 23, Chunked, "Get on stale blob upload should return 204 with a range and location")]
    public async Task Status_of_stale_session_is_204_with_range_and_location()
    {
        var previous = Expect.Prior(_w.PrevResponse, "the chunked upload session");
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Get, previous.RelativeLocation()));
        Expect.Status(response, 204);
        Expect.HeaderPresent(response, "Location");
        Expect.Header(response, "Range", Chunks.Chunk1Range);
        _w.LastResponse = response;
    }

    [Spec(Workflow.Push, 24, Chunked, "PATCH request with second chunk should return 202")]
    public async Task Second_chunk_is_202()
    {
        var last = Expect.Prior(_w.LastResponse, "the upload status answer");
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Patch, last.RelativeLocation())
            .WithHeader("Content-Length", Chunks.Chunk2Length)
            .WithHeader("Content-Range", Chunks.Chunk2Range)
            .WithHeader("Content-Type", OctetStream)
            .WithBody(Chunks.Chunk2));
        Expect.Status(response, 202);
        Expect.HeaderPresent(response, "Location");
        _w.LastResponse = response;
    }

    [Spec(Workflow.Push, 25, Chunked, "PUT request with digest should return 201")]
    public async Task Closing_put_with_digest_is_201()
    {
        var last = Expect.Prior(_w.LastResponse, "the second chunk answer");
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Put, last.RelativeLocation())
            .WithHeader("Content-Length", "0")
            .WithHeader("Content-Type", OctetStream)
            .WithQuery("digest", Chunks.Whole.Digest));
        Expect.Status(response, 201);
        Expect.HeaderPresent(response, "Location");
    }

    [Spec(Workflow.Push, 30, Mount, "Cross-mounting of a blob without the from argument should yield session id")]
    public async Task Mount_without_from_opens_session()
    {
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/", name: CrossmountNamespace)
            .WithQuery("mount", Data.DummyDigest));
        Expect.Status(response, 202);
        Assert.NotEmpty(response.AbsoluteLocation());
    }

    [Spec(Workflow.Push, 31, Mount, "POST request to mount another repository's blob should return 201 or 202")]
    public async Task Mount_from_other_repository_is_201_or_202()
    {
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/", name: CrossmountNamespace)
            .WithQuery("mount", Data.TestBlobA.Digest)
            .WithQuery("from", Client.DefaultName));
        Expect.AnyOf(response, 201, 202);
        _w.MountResponse = response;
    }

    /// <summary>
    /// Upstream runs this only when the mount answered 201 and skips it otherwise. Nothing may be skipped
    /// here, so a registry that did not mount fails it.
    /// </summary>
    [Spec(Workflow.Push, 32, Mount, "GET request to test digest within cross-mount namespace should return 200")]
    public async Task Mounted_blob_is_readable_in_target_repository()
    {
        var mount = Expect.Prior(_w.MountResponse, "the mount answer");
        Assert.True(mount.StatusCode == 201,
            $"the registry did not mount the blob ({mount.StatusCode}); upstream would skip this check, which this suite does not allow");
        Assert.Equal($"/v2/{CrossmountNamespace}/blobs/{Data.TestBlobA.Digest}", mount.RelativeLocation());
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Get, mount.RelativeLocation()));
        Expect.Status(response, 200);
    }

    /// <summary>
    /// Upstream checks the mount answer's session Location only when the mount answered 202, and skips this
    /// otherwise. So that it always runs, a registry that mounted (201) is asked to mount a blob that does
    /// not exist, which must open a session in the target repository instead.
    /// </summary>
    [Spec(Workflow.Push, 33, Mount, "Cross-mounting of nonexistent blob should yield session id")]
    public async Task Mount_of_nonexistent_blob_opens_session()
    {
        var mount = Expect.Prior(_w.MountResponse, "the mount answer");
        if (mount.StatusCode != 202)
        {
            mount = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/", name: CrossmountNamespace)
                .WithQuery("mount", Data.DummyDigest)
                .WithQuery("from", Client.DefaultName));
            Expect.Status(mount, 202);
        }

        Assert.StartsWith($"/v2/{CrossmountNamespace}/blobs/uploads/", mount.RelativeLocation(), StringComparison.Ordinal);
    }

    /// <summary>
    /// Upstream's two mutually exclusive checks ("... enabled should return a 201" and "... disabled should
    /// return a 202"), selected by OCI_AUTOMATIC_CROSSMOUNT and both skipped when it is unset. Here the
    /// expectation comes from OCI_AUTOMATIC_CROSSMOUNT or the target's known behaviour, so one of them always runs.
    /// </summary>
    [Spec(Workflow.Push, 34, Mount, "Cross-mounting without from, and automatic content discovery enabled should return a 201 / disabled should return a 202")]
    public async Task Mount_without_from_follows_automatic_content_discovery_setting()
    {
        var mount = Expect.Prior(_w.MountResponse, "the mount answer");
        Assert.True(mount.StatusCode == 201,
            $"the registry did not mount the blob ({mount.StatusCode}); upstream would skip this check, which this suite does not allow");
        var response = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/", name: CrossmountNamespace)
            .WithQuery("mount", Data.TestBlobA.Digest));
        Expect.Status(response, _w.Registry.AutomaticCrossmount ? 201 : 202);
    }

    [Spec(Workflow.Push, 40, ManifestUpload, "GET nonexistent manifest should return 404")]
    public async Task Get_nonexistent_manifest_is_404() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/manifests/<reference>", reference: SuiteData.NonexistentManifest), 404);

    [Spec(Workflow.Push, 41, ManifestUpload, "PUT should accept a manifest upload")]
    public async Task Put_manifest_under_four_tags_is_201()
    {
        for (var i = 0; i < 4; i++)
        {
            var response = await _w.PutManifestAsync($"test{i}", Data.Manifests[1].Content);
            Expect.HeaderPresent(response, "Location");
            Expect.Status(response, 201);
        }
    }

    [Spec(Workflow.Push, 42, ManifestUpload, "Registry should accept a manifest upload with no layers")]
    public async Task Put_manifest_without_layers()
    {
        var response = await _w.PutManifestAsync(SuiteData.EmptyLayerTestTag, Data.EmptyLayerManifest.Content);
        if (response.StatusCode == 201)
        {
            _w.EmptyLayerManifestRef = response.Header("Location");
            Assert.NotEmpty(_w.EmptyLayerManifestRef);
        }
        else
        {
            // Upstream only warns: an image manifest with no layers may be refused.
            _output.WriteLine($"WARNING: image manifest with no layers is not supported: {response}");
        }
    }

    [Spec(Workflow.Push, 43, ManifestUpload, "GET request to manifest URL (digest) should yield 200 response")]
    public async Task Get_pushed_manifest_by_digest_is_200() =>
        Expect.Status(await _w.GetAsync("/v2/<name>/manifests/<reference>", reference: Data.Manifests[1].Digest, accept: SuiteData.ImageManifestMediaType), 200);

    [Spec(Workflow.Push, 50, Teardown, "Delete manifest created in tests", StepWhenBlobsDeletedFirst = 53)]
    public async Task Teardown_delete_manifest()
    {
        Expect.SuccessOr(await _w.DeleteManifestAsync(Data.Manifests[1].Digest), 405);
        if (_w.EmptyLayerManifestRef.Length > 0)
        {
            Expect.SuccessOr(await _w.DeleteManifestAsync(Data.EmptyLayerManifest.Digest), 405);
        }
    }

    [Spec(Workflow.Push, 51, Teardown, "Delete config blob created in tests")]
    public async Task Teardown_delete_config() => Expect.SuccessOr(await _w.DeleteBlobAsync(Data.Configs[1].Digest), 404, 405);

    [Spec(Workflow.Push, 52, Teardown, "Delete layer blob created in setup")]
    public async Task Teardown_delete_layer() => Expect.SuccessOr(await _w.DeleteBlobAsync(Data.Layer.Digest), 404, 405);
}
