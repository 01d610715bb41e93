using System.Diagnostics;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Registry.Api;
using Airlock.Registry.Auth;
using Airlock.Registry.PullThrough;
using Airlock.Registry.WebConsole;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Airlock.Registry;

/// <summary>
/// The registry's single request delegate: extra endpoints, health and metrics, then the /v2 API — parse
/// the route once, check read-only mode and access, dispatch to the handler of the resource, and turn an
/// <see cref="OciException"/> into the spec's error body in one place.
/// </summary>
internal sealed class RegistryApplication : IDisposable
{
    private static readonly AccessRequest[] NoAccess = [];
    private readonly RegistryServerOptions _options;
    private readonly RegistryMetrics _metrics;
    private readonly Dictionary<string, RequestDelegate> _extra;
    private readonly ManifestHandler _manifests;
    private readonly BlobHandler _blobs;
    private readonly UploadHandler _uploads;
    private readonly ListingHandler _listings;
    private readonly PullThroughCache? _pullThrough;
    private readonly PrivateRepositories _privateRepositories;
    private readonly ILogger _logger;
    private readonly bool _authorizes;
    private readonly RepositoryCatalog _catalog;
    private readonly ApiHandler _api;
    private readonly ConsoleAssets? _console;

    public RegistryApplication(IRegistryStore storage, RegistryServerOptions options, PrivateRepositories privateRepositories, ILoggerFactory loggerFactory)
    {
        _options = options;
        _logger = loggerFactory.CreateLogger("Airlock.Registry");
        _metrics = new RegistryMetrics(storage.Blobs, options.Time);
        _extra = options.ExtraEndpoints.ToDictionary(e => e.Path, e => e.Handler, StringComparer.Ordinal);
        var manifestCache = new ManifestCache();
        _manifests = new ManifestHandler(storage, manifestCache, _metrics, options.MaxManifestBytes, _logger);
        _blobs = new BlobHandler(storage, _metrics, options.ZeroCopy ? new ZeroCopySender(_logger) : null, _logger);
        _uploads = new UploadHandler(storage, _metrics, privateRepositories, _logger);
        _listings = new ListingHandler(storage);
        _privateRepositories = privateRepositories;
        _authorizes = options.AccessController is not AllowAllAccessController;
        _pullThrough = options.PullThrough is { } pullThrough ? new PullThroughCache(storage, manifestCache, pullThrough, privateRepositories, loggerFactory) : null;
        _catalog = new RepositoryCatalog(storage, options.Time);
        _api = new ApiHandler(storage, options.ConsoleAccessController ?? options.AccessController, options.Cluster, options.ReadOnly, _catalog,
            new ImageInspector(storage, options.MaxManifestBytes), new LoadHistory(storage, options.Time));
        _console = options.Console ? ConsoleAssets.Load() : null;
    }

    public void Dispose() => _pullThrough?.Dispose();

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await DispatchAsync(context).ConfigureAwait(false);
        }
        catch (OciException ex)
        {
            if (!context.Response.HasStarted)
            {
                await OciErrorTable.WriteAsync(context, ex).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
        catch (BadHttpRequestException ex)
        {
            _logger.LogDebug(ex, "Bad request {Method} {Path}", context.Request.Method, context.Request.Path);
            if (!context.Response.HasStarted)
            {
                await OciErrorTable.WriteAsync(context, new OciException(OciErrorCode.BlobUploadInvalid, ex.Message)).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException && context.RequestAborted.IsCancellationRequested)
        {
            // Connection reset while streaming.
        }
        catch (IOException ex) when (IsStorageFull(ex))
        {
            _logger.LogError("{Method} {Path} failed: the store is full ({Reason})", context.Request.Method, context.Request.Path, ex.Message);
            if (context.Response.HasStarted)
            {
                context.Abort();
            }
            else
            {
                await OciErrorTable.WriteAsync(context, new OciException(OciErrorCode.StorageFull, $"no space left in the registry's storage: {ex.Message}")).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            // The store failed (disk full, permissions): a server error, not the client's.
            _logger.LogError(ex, "{Method} {Path} failed", context.Request.Method, context.Request.Path);
            if (context.Response.HasStarted)
            {
                context.Abort();
            }
            else
            {
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            }
        }
        finally
        {
            _metrics.Record(context.Request.Method, context.Response.StatusCode, started);
        }
    }

    private async Task WriteMetricsAsync(HttpContext context) =>
        await WriteTextAsync(context, await _metrics.RenderAsync(context.RequestAborted).ConfigureAwait(false) + _pullThrough?.RenderMetrics(), "text/plain; version=0.0.4; charset=utf-8").ConfigureAwait(false);

    // ENOSPC and EDQUOT: .NET puts the errno in HResult on Linux.
    private static bool IsStorageFull(IOException ex) => ex.HResult is 28 or 122;

    private Task DispatchAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        if (_extra.TryGetValue(path, out var extra))
        {
            return extra(context);
        }

        if (path == "/healthz")
        {
            return WriteTextAsync(context, "ok\n", "text/plain; charset=utf-8");
        }

        if (path == "/metrics")
        {
            return WriteMetricsAsync(context);
        }

        if (ApiHandler.Owns(path))
        {
            return _api.HandleAsync(context);
        }

        if (_console is not null && ConsoleAssets.Owns(path))
        {
            return ServeConsoleAsync(context, _console);
        }

        var rawPath = OciRoute.TargetPath(context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? path) ?? path;

        context.Response.Headers[RegistryHeaders.ApiVersion] = RegistryHeaders.ApiVersionValue;
        var method = request.Method;
        var isWrite = !(HttpMethods.IsGet(method) || HttpMethods.IsHead(method));
        OciRoute route;
        try
        {
            if (!OciRoute.TryParse(rawPath, out route))
            {
                throw new OciException(OciErrorCode.NotFound, $"{path} is not part of the registry API");
            }
        }
        catch (OciException ex) when (ex.Code == OciErrorCode.TagInvalid && !HttpMethods.IsPut(method))
        {
            // A tag that cannot exist is simply not there when read or deleted (distribution and the OCI
            // conformance suite answer 404); only pushing it is invalid.
            throw new OciException(OciErrorCode.ManifestUnknown, ex.Detail);
        }

        if (isWrite && _options.ReadOnly && route.Kind != OciRouteKind.Base)
        {
            throw new OciException(OciErrorCode.ReadOnly);
        }

        ProxyTarget? proxy = null;
        if (_pullThrough is not null && route.Kind is not (OciRouteKind.Base or OciRouteKind.Catalog)
            && _pullThrough.Resolve(route.Name, request.Query["ns"].ToString()) is { } target)
        {
            if (isWrite)
            {
                throw new OciException(OciErrorCode.ProxiedRepository,
                    $"{target.LocalName} is a pull-through cache of {target.Registry} ({target.Upstream.Address}); push to a repository outside it");
            }

            // Access rules, the store and the listings all see the cached repository's local name.
            proxy = target;
            route = route with { Name = target.LocalName };
        }

        var handling = _authorizes ? AuthorizeThenRouteAsync(context, route, method, proxy)
            : proxy is null ? RouteAsync(context, route, method) : RouteProxiedAsync(context, route, method, proxy);
        return isWrite && route.Kind != OciRouteKind.Base ? ForgetAfterAsync(handling, route.Name) : handling;
    }

    /// <summary>The console's repositories list keeps measurements a while; a write through this registry shows at once.</summary>
    private async Task ForgetAfterAsync(Task handling, string repository)
    {
        try
        {
            await handling.ConfigureAwait(false);
        }
        finally
        {
            _catalog.Forget(repository);
        }
    }

    /// <summary>The console's pages are behind what the <c>/v2/</c> base check asks: a user when there are users.</summary>
    private async Task ServeConsoleAsync(HttpContext context, ConsoleAssets console)
    {
        await (_options.ConsoleAccessController ?? _options.AccessController).RequireAsync(context, NoAccess).ConfigureAwait(false);
        await console.ServeAsync(context).ConfigureAwait(false);
    }

    private async Task AuthorizeThenRouteAsync(HttpContext context, OciRoute route, string method, ProxyTarget? proxy)
    {
        var decision = await _options.AccessController.RequireAsync(context, AccessFor(context, route, method)).ConfigureAwait(false);

        var anonymous = decision.User is null;
        if (anonymous && route.Kind == OciRouteKind.Catalog && HttpMethods.IsGet(method))
        {
            // Names of private upstreams' caches are content too.
            await _listings.CatalogAsync(context, _privateRepositories.Contains).ConfigureAwait(false);
            return;
        }

        // The access policy already refuses anonymous clients here (RegistryAuthOptions.AuthenticatedOnly); this
        // is the backstop should a controller be built without it.
        if (anonymous && route.Kind != OciRouteKind.Base && ((proxy?.Private ?? false) || _privateRepositories.Contains(route.Name)))
        {
            throw new OciException(OciErrorCode.Denied, $"{route.Name} is cached from a private upstream; authenticate to pull it");
        }

        await (proxy is null ? RouteAsync(context, route, method) : RouteProxiedAsync(context, route, method, proxy)).ConfigureAwait(false);
    }

    /// <summary>A read of a proxied repository: fill the store from the upstream where needed, then serve as usual.</summary>
    private async Task RouteProxiedAsync(HttpContext context, OciRoute route, string method, ProxyTarget proxy)
    {
        var head = HttpMethods.IsHead(method);
        if (HttpMethods.IsGet(method) || head)
        {
            if (route.Kind == OciRouteKind.Manifest)
            {
                await _pullThrough!.PrepareManifestAsync(proxy, route, context.RequestAborted).ConfigureAwait(false);
            }
            else if (route.Kind == OciRouteKind.Blob && await _pullThrough!.ServeBlobAsync(context, proxy, route, head).ConfigureAwait(false))
            {
                return;
            }
        }

        await RouteAsync(context, route, method).ConfigureAwait(false);
    }

    /// <summary>The access a request needs, derived from its route and method.</summary>
    internal static IReadOnlyList<AccessRequest> AccessFor(HttpContext context, OciRoute route, string method)
    {
        switch (route.Kind)
        {
            case OciRouteKind.Base:
                return NoAccess;
            case OciRouteKind.Catalog:
                return [AccessRequest.Catalog()];
        }

        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method))
        {
            return [AccessRequest.Repository(route.Name, "pull")];
        }

        if (HttpMethods.IsDelete(method) && route.Kind != OciRouteKind.Upload)
        {
            return [AccessRequest.Repository(route.Name, "delete")];
        }

        var push = AccessRequest.Repository(route.Name, "pull", "push");
        if (route.Kind == OciRouteKind.UploadStart && context.Request.Query["from"].ToString() is { Length: > 0 } from
            && from != route.Name && Oci.ImageReference.IsValidRepository(from))
        {
            return [push, AccessRequest.Repository(from, "pull")];
        }

        return [push];
    }

    private Task RouteAsync(HttpContext context, OciRoute route, string method)
    {
        var get = HttpMethods.IsGet(method);
        var head = HttpMethods.IsHead(method);
        switch (route.Kind)
        {
            case OciRouteKind.Base when get || head:
                context.Response.StatusCode = StatusCodes.Status200OK;
                return WriteTextAsync(context, "{}", "application/json");
            case OciRouteKind.Catalog when get:
                return _listings.CatalogAsync(context, hidden: null);
            case OciRouteKind.Manifest when get || head:
                return _manifests.GetAsync(context, route, head);
            case OciRouteKind.Manifest when HttpMethods.IsPut(method):
                return _manifests.PutAsync(context, route);
            case OciRouteKind.Manifest when HttpMethods.IsDelete(method):
                return _manifests.DeleteAsync(context, route);
            case OciRouteKind.Blob when get || head:
                return _blobs.GetAsync(context, route, head);
            case OciRouteKind.Blob when HttpMethods.IsDelete(method):
                return _blobs.DeleteAsync(context, route);
            case OciRouteKind.UploadStart when HttpMethods.IsPost(method):
                return _uploads.StartAsync(context, route);
            case OciRouteKind.Upload when HttpMethods.IsPatch(method):
                return _uploads.PatchAsync(context, route);
            case OciRouteKind.Upload when HttpMethods.IsPut(method):
                return _uploads.PutAsync(context, route);
            case OciRouteKind.Upload when get:
                return _uploads.StatusAsync(context, route);
            case OciRouteKind.Upload when HttpMethods.IsDelete(method):
                return _uploads.CancelAsync(context, route);
            case OciRouteKind.TagList when get:
                return _listings.TagsAsync(context, route);
            case OciRouteKind.Referrers when get:
                return _listings.ReferrersAsync(context, route);
            default:
                throw new OciException(OciErrorCode.MethodNotAllowed, $"{method} is not allowed on this endpoint");
        }
    }

    private static Task WriteTextAsync(HttpContext context, string text, string contentType)
    {
        var response = context.Response;
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        response.ContentType = contentType;
        response.ContentLength = bytes.Length;
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(bytes, context.RequestAborted).AsTask();
    }
}
