using Airlock.Conformance.Tests.Suite;

namespace Airlock.Conformance.Tests.Harness;

/// <summary>
/// What one workflow's checks share (a collection fixture per workflow): the registry, a client on the
/// suite's namespace, the generated content, and the requests every workflow's setup and teardown repeat.
/// Subclasses add the state upstream keeps in closure variables between checks (last response, tag list).
/// </summary>
public abstract class WorkflowFixture : IAsyncLifetime
{
    private readonly Workflow _workflow;
    private RegistryUnderTest? _registry;
    private RegistryClient? _client;

    protected WorkflowFixture(Workflow workflow) => _workflow = workflow;

    public RegistryUnderTest Registry => _registry ?? throw new InvalidOperationException("the registry is not started");

    public RegistryClient Client => _client ?? throw new InvalidOperationException("the registry is not started");

    internal ConformanceSettings Settings => ConformanceSettings.Current;

    internal SuiteData Data => SuiteData.Current;

    public async Task InitializeAsync()
    {
        if (!Settings.EnabledWorkflows.Contains(_workflow))
        {
            return;
        }

        try
        {
            _registry = await RegistryUnderTest.AcquireAsync();
        }
        catch
        {
            // This workflow will not run; it still counts as done so the last one stops the registry.
            await RegistryUnderTest.ReleaseAsync();
            throw;
        }

        _client = new RegistryClient(_registry.RootUrl, Settings.Namespace, Settings.Username, Settings.Password, Settings.Debug);
    }

    public async Task DisposeAsync()
    {
        if (_registry is null)
        {
            return;
        }

        _client?.Dispose();
        _registry = null;
        await RegistryUnderTest.ReleaseAsync();
    }

    /// <summary>POST to open an upload session, then PUT the whole blob with its digest (the suite's "Populate" steps).</summary>
    internal async Task<RegistryResponse> PushBlobAsync(TestBlob blob)
    {
        var session = await Client.SendAsync(Client.NewRequest(HttpMethod.Post, "/v2/<name>/blobs/uploads/"));
        // Upstream would go on and PUT to an empty Location, i.e. the registry's root URL, which some
        // registries answer with 200; failing here names the actual problem.
        Expect.HeaderPresent(session, "Location");
        return await Client.SendAsync(Client.NewRequest(HttpMethod.Put, session.RelativeLocation())
            .WithQuery("digest", blob.Digest)
            .WithHeader("Content-Type", "application/octet-stream")
            .WithHeader("Content-Length", blob.ContentLength)
            .WithBody(blob.Content));
    }

    internal Task<RegistryResponse> PutManifestAsync(string reference, byte[] content, string mediaType = SuiteData.ImageManifestMediaType) =>
        Client.SendAsync(Client.NewRequest(HttpMethod.Put, "/v2/<name>/manifests/<reference>", reference: reference)
            .WithHeader("Content-Type", mediaType)
            .WithBody(content));

    internal Task<RegistryResponse> DeleteManifestAsync(string reference) =>
        Client.SendAsync(Client.NewRequest(HttpMethod.Delete, "/v2/<name>/manifests/<reference>", reference: reference));

    internal Task<RegistryResponse> DeleteBlobAsync(string digest) =>
        Client.SendAsync(Client.NewRequest(HttpMethod.Delete, "/v2/<name>/blobs/<digest>", digest: digest));

    internal Task<RegistryResponse> GetAsync(string path, string? reference = null, string? digest = null, string? accept = null)
    {
        var request = Client.NewRequest(HttpMethod.Get, path, reference: reference, digest: digest);
        return Client.SendAsync(accept is null ? request : request.WithHeader("Accept", accept));
    }

    /// <summary>The <c>tags</c> of a tags/list answer; empty when the body is not one (upstream's getTagList).</summary>
    internal static List<string> TagsOf(RegistryResponse response)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(response.Body);
            return document.RootElement.TryGetProperty("tags", out var tags) && tags.ValueKind == System.Text.Json.JsonValueKind.Array
                ? tags.EnumerateArray().Select(t => t.GetString() ?? string.Empty).ToList()
                : [];
        }
        catch (System.Text.Json.JsonException)
        {
            return [];
        }
    }
}
