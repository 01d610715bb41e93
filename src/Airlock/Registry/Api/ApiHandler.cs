using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;
using Airlock.Registry.Auth;
using Microsoft.AspNetCore.Http;

namespace Airlock.Registry.Api;

/// <summary>
/// Airlock's JSON API under <c>/api/v1/</c> (docs/api.md), which the console draws and CLI verbs call. It is
/// behind the same authentication and access rules as <c>/v2/</c>: listings need what <c>/v2/</c>'s base check
/// needs and show only repositories the user may pull; a repository's pages need pull on it; recording a load
/// needs push on every repository it names; the storage and cluster pages need what the catalog needs.
/// </summary>
internal sealed class ApiHandler(
    IRegistryStore storage,
    IAccessController access,
    IClusterView? cluster,
    bool readOnly,
    RepositoryCatalog catalog,
    ImageInspector inspector,
    LoadHistory loads)
{
    public const string Prefix = "/api/";
    private const int DefaultTagLimit = 100;
    private const int DefaultRecordLimit = 100;
    private const string RepositoriesPath = ConsoleApi.Root + "/repositories";
    private const string ManifestsSegment = "/manifests/";

    private readonly IAccessController _access = access;

    public static bool Owns(string path) => path.StartsWith(Prefix, StringComparison.Ordinal) || path == "/api";

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value!.TrimEnd('/');
        var read = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method);
        context.Response.Headers.CacheControl = "no-store";
        switch (path)
        {
            case ConsoleApi.Root when read:
                await InfoAsync(context).ConfigureAwait(false);
                return;
            case RepositoriesPath when read:
                await RepositoriesAsync(context).ConfigureAwait(false);
                return;
            case ConsoleApi.Bundles when read:
                await BundlesAsync(context).ConfigureAwait(false);
                return;
            case ConsoleApi.Bundles when HttpMethods.IsPost(request.Method):
                await RecordLoadAsync(context).ConfigureAwait(false);
                return;
            case ConsoleApi.Root + "/storage" when read:
                await StorageAsync(context).ConfigureAwait(false);
                return;
            case ConsoleApi.Root + "/cluster" when read && cluster is not null:
                await ClusterAsync(context, cluster).ConfigureAwait(false);
                return;
            case ConsoleApi.Root or RepositoriesPath or ConsoleApi.Bundles or ConsoleApi.Root + "/storage":
                throw new OciException(OciErrorCode.MethodNotAllowed, $"{request.Method} is not allowed on {path}");
        }

        if (path.StartsWith(RepositoriesPath + "/", StringComparison.Ordinal))
        {
            if (!read)
            {
                throw new OciException(OciErrorCode.MethodNotAllowed, $"{request.Method} is not allowed on {path}");
            }

            var rest = path[(RepositoriesPath.Length + 1)..];
            var manifests = rest.LastIndexOf(ManifestsSegment, StringComparison.Ordinal);
            if (manifests > 0 && Digest.TryParse(rest[(manifests + ManifestsSegment.Length)..], out var digest))
            {
                await ManifestAsync(context, Repository(rest[..manifests]), digest).ConfigureAwait(false);
            }
            else
            {
                await RepositoryAsync(context, Repository(rest)).ConfigureAwait(false);
            }

            return;
        }

        throw new OciException(OciErrorCode.NotFound, $"{path} is not part of the API (see docs/api.md)");
    }

    private async Task InfoAsync(HttpContext context)
    {
        var user = await RequireAsync(context, []).ConfigureAwait(false);
        var seesAll = MaySeeEverything(user);
        var version = typeof(ApiHandler).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
        var info = new ApiInfo(ConsoleApi.Product, "v1", version, user, new ApiFeatures(seesAll, seesAll && cluster is not null, readOnly));
        await WriteAsync(context, info, DistributionJsonContext.Default.ApiInfo).ConfigureAwait(false);
    }

    private async Task RepositoriesAsync(HttpContext context)
    {
        var user = await RequireAsync(context, []).ConfigureAwait(false);
        var query = context.Request.Query;
        var search = query["q"].ToString().Trim();
        if (search.Length > 256)
        {
            throw new OciException(OciErrorCode.Unsupported, "q must be at most 256 characters");
        }

        var sort = query["sort"].ToString() switch
        {
            "" or "name" => RepositorySort.Name,
            "tags" => RepositorySort.Tags,
            "size" => RepositorySort.Size,
            "pushed" => RepositorySort.LastPush,
            var other => throw new OciException(OciErrorCode.Unsupported, $"sort=\"{other}\" is not one of name, tags, size, pushed"),
        };
        var descending = query["order"].ToString() switch
        {
            "" or "asc" => false,
            "desc" => true,
            var other => throw new OciException(OciErrorCode.Unsupported, $"order=\"{other}\" is not asc or desc"),
        };
        var limit = Limit(context, 50, RepositoryCatalog.MaxLimit);
        var cursor = query["cursor"].ToString() is { Length: > 0 } given ? given : null;
        var page = await catalog.ListAsync(new RepositoryQuery(search, sort, descending, limit, cursor), Visible(user), context.RequestAborted).ConfigureAwait(false);
        await WriteAsync(context, page, ApiJsonContext.Default.RepositoryPage).ConfigureAwait(false);
    }

    private async Task RepositoryAsync(HttpContext context, string name)
    {
        await RequireAsync(context, [AccessRequest.Repository(name, "pull")]).ConfigureAwait(false);
        var summary = await catalog.SummaryAsync(name, context.RequestAborted).ConfigureAwait(false)
            ?? throw new OciException(OciErrorCode.NameUnknown, $"repository {name} is unknown");
        var cursor = context.Request.Query["cursor"].ToString() is { Length: > 0 } given ? given : null;
        var limit = Limit(context, DefaultTagLimit, 1000);
        // The store's page after the cursor; a tag deleted since it was listed drops out of the page.
        var tags = await storage.Repositories.ListTagsAsync(name, cursor, limit, context.RequestAborted).ConfigureAwait(false) ?? ListingPage.Empty;
        var page = new List<TagSummary>();
        foreach (var tag in tags.Names)
        {
            if (await inspector.TagAsync(name, tag, context.RequestAborted).ConfigureAwait(false) is { } row)
            {
                page.Add(row);
            }
        }

        var next = tags.HasMore ? tags.Names[^1] : null;
        await WriteAsync(context, new RepositoryDetail(summary, page, next), ApiJsonContext.Default.RepositoryDetail).ConfigureAwait(false);
    }

    private async Task ManifestAsync(HttpContext context, string name, Digest digest)
    {
        var user = await RequireAsync(context, [AccessRequest.Repository(name, "pull")]).ConfigureAwait(false);
        var visible = Visible(user);
        var repositories = await catalog.AllNamesAsync(context.RequestAborted).ConfigureAwait(false);
        var detail = await inspector.ManifestAsync(name, digest, repositories.Where(visible), context.RequestAborted).ConfigureAwait(false)
            ?? throw new OciException(OciErrorCode.ManifestUnknown, $"{name} has no manifest {digest}");
        await WriteAsync(context, detail, ApiJsonContext.Default.ManifestDetail).ConfigureAwait(false);
    }

    private async Task BundlesAsync(HttpContext context)
    {
        var user = await RequireAsync(context, []).ConfigureAwait(false);
        var records = await loads.ListAsync(Visible(user), Limit(context, DefaultRecordLimit, LoadHistory.Capacity), context.RequestAborted).ConfigureAwait(false);
        await WriteAsync(context, new LoadRecordPage(records), ApiJsonContext.Default.LoadRecordPage).ConfigureAwait(false);
    }

    private async Task RecordLoadAsync(HttpContext context)
    {
        if (readOnly)
        {
            throw new OciException(OciErrorCode.ReadOnly);
        }

        var request = context.Request;
        if (request.ContentLength > ConsoleApi.MaxLoadRecordBytes)
        {
            throw new OciException(OciErrorCode.SizeInvalid, $"a load record may have at most {ConsoleApi.MaxLoadRecordBytes} bytes");
        }

        // Read whole but bounded, before anything is checked: the access it needs depends on the repositories it names.
        var body = await RequestBody.ReadAsync(request.Body, ConsoleApi.MaxLoadRecordBytes, context.RequestAborted, "a load record", OciErrorCode.SizeInvalid)
            .ConfigureAwait(false);
        LoadReport? report;
        try
        {
            report = JsonSerializer.Deserialize(body, DistributionJsonContext.Default.LoadReport);
        }
        catch (JsonException ex)
        {
            throw new OciException(OciErrorCode.Unsupported, $"the body is not a load record: {ex.Message}");
        }

        if (report?.Images is null || report.File is null)
        {
            throw new OciException(OciErrorCode.Unsupported, "the body is not a load record: it needs \"file\" and \"images\"");
        }

        // Names are checked before they become access requests, so an invalid one is reported as such.
        var malformed = report.Images.FirstOrDefault(i => i is null || !ImageReference.IsValidRepository(i.Repository));
        if (malformed is not null || report.Images.Count is 0 or > ConsoleApi.MaxLoadRecordImages)
        {
            throw (await loads.CheckAsync(report, context.RequestAborted).ConfigureAwait(false))!;
        }

        var user = await RequireAsync(context, [.. report.Images.Select(i => i.Repository).Distinct(StringComparer.Ordinal).Select(r => AccessRequest.Repository(r, "pull", "push"))])
            .ConfigureAwait(false);
        if (await loads.CheckAsync(report, context.RequestAborted).ConfigureAwait(false) is { } problem)
        {
            throw problem;
        }

        var record = await loads.RecordAsync(report, user, context.RequestAborted).ConfigureAwait(false);
        context.Response.StatusCode = StatusCodes.Status201Created;
        context.Response.Headers.Location = ConsoleApi.Bundles + "#" + record.Id;
        context.Response.ContentLength = 0;
    }

    private async Task StorageAsync(HttpContext context)
    {
        await RequireAsync(context, [AccessRequest.Catalog()]).ConfigureAwait(false);
        var cancellationToken = context.RequestAborted;
        var uploads = new List<UploadSummary>();
        await foreach (var session in storage.Uploads.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            uploads.Add(new UploadSummary(session.Repository, session.StartedAt, session.LastActivity, session.Length));
        }

        uploads.Sort((a, b) => (a.StartedAt ?? a.LastActivity).CompareTo(b.StartedAt ?? b.LastActivity));
        // Measured afresh (a walk over every blob): the page is for those who look after the store, not a hot path.
        var history = storage.History;
        var report = new StorageReport(
            await storage.Blobs.MeasureAsync(storage.Time, cancellationToken).ConfigureAwait(false),
            (await catalog.AllNamesAsync(cancellationToken).ConfigureAwait(false)).Count,
            await history.ListSamplesAsync(cancellationToken).ConfigureAwait(false),
            await history.ListCollectionsAsync(cancellationToken).ConfigureAwait(false),
            uploads);
        await WriteAsync(context, report, ApiJsonContext.Default.StorageReport).ConfigureAwait(false);
    }

    private async Task ClusterAsync(HttpContext context, IClusterView cluster)
    {
        await RequireAsync(context, [AccessRequest.Catalog()]).ConfigureAwait(false);
        var snapshot = await cluster.SnapshotAsync(context.RequestAborted).ConfigureAwait(false);
        await WriteAsync(context, snapshot, ApiJsonContext.Default.ClusterSnapshot).ConfigureAwait(false);
    }

    /// <summary>Authenticates and authorises as <c>/v2/</c> does (401 with the challenge, 403); the user, null when anonymous.</summary>
    private async ValueTask<string?> RequireAsync(HttpContext context, IReadOnlyList<AccessRequest> requested) =>
        (await _access.RequireAsync(context, requested).ConfigureAwait(false)).User;

    private Func<string, bool> Visible(string? user) => name => _access.Grant(user, AccessRequest.Repository(name, "pull")).Contains("pull");

    private bool MaySeeEverything(string? user) => _access.Grant(user, AccessRequest.Catalog()).Count > 0;

    private static string Repository(string name) =>
        ImageReference.IsValidRepository(name) ? name : throw new OciException(OciErrorCode.NameInvalid, $"\"{name}\" is not a valid repository name");

    private static int Limit(HttpContext context, int fallback, int max)
    {
        var value = context.Request.Query["limit"].ToString();
        if (value.Length == 0)
        {
            return fallback;
        }

        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit is > 0 && limit <= max
            ? limit
            : throw new OciException(OciErrorCode.Unsupported, $"limit=\"{value}\" is not a number from 1 to {max}");
    }

    private static async Task WriteAsync<T>(HttpContext context, T value, JsonTypeInfo<T> type)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, type);
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json; charset=utf-8";
        response.ContentLength = bytes.Length;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
        }
    }
}
