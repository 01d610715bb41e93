using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;
using Microsoft.AspNetCore.Http;

namespace Airlock.Registry;

/// <summary>The list endpoints: <c>tags/list</c>, <c>_catalog</c> (both paginated with n/last and a Link header) and <c>referrers</c>.</summary>
internal sealed class ListingHandler(IRegistryStore storage)
{
    public async Task TagsAsync(HttpContext context, OciRoute route)
    {
        var ct = context.RequestAborted;
        var (last, limit) = ParsePaging(context.Request.Query);
        var (names, more) = await CollectPageAsync(
            async (after, count) => await storage.Repositories.ListTagsAsync(route.Name, after, count, ct).ConfigureAwait(false)
                ?? throw new OciException(OciErrorCode.NameUnknown, $"repository {route.Name} is unknown"),
            last, limit, hidden: null).ConfigureAwait(false);
        await WritePageAsync(context, OciRoute.ForTagList(route.Name).Path, names, more, limit, (json, page) => TagList.Write(json, route.Name, page)).ConfigureAwait(false);
    }

    /// <summary>The catalog, without the repositories <paramref name="hidden"/> names (those an anonymous client must not see).</summary>
    public async Task CatalogAsync(HttpContext context, Func<string, bool>? hidden)
    {
        var ct = context.RequestAborted;
        var (last, limit) = ParsePaging(context.Request.Query);
        var (names, more) = await CollectPageAsync(
            (after, count) => storage.Repositories.ListRepositoriesAsync(after, count, ct),
            last, limit, hidden).ConfigureAwait(false);
        await WritePageAsync(context, OciRoute.Catalog.Path, names, more, limit, CatalogPage.Write).ConfigureAwait(false);
    }

    public async Task ReferrersAsync(HttpContext context, OciRoute route)
    {
        var ct = context.RequestAborted;
        var subject = route.Digest!.Value;
        var artifactType = context.Request.Query["artifactType"].ToString();
        IEnumerable<Descriptor> referrers = await storage.Repositories.ExistsAsync(route.Name, ct).ConfigureAwait(false)
            ? await storage.Repositories.ListReferrersAsync(route.Name, subject, ct).ConfigureAwait(false)
            : [];
        if (artifactType.Length > 0)
        {
            referrers = referrers.Where(r => string.Equals(r.ArtifactType, artifactType, StringComparison.Ordinal));
            context.Response.Headers[RegistryHeaders.FiltersApplied] = "artifactType";
        }

        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("schemaVersion", 2);
            json.WriteString("mediaType", MediaTypes.OciIndex);
            json.WriteStartArray("manifests");
            foreach (var referrer in referrers)
            {
                JsonSerializer.Serialize(json, referrer, RegistryJsonContext.Default.Descriptor);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        await WriteJsonAsync(context, buffer, MediaTypes.OciIndex).ConfigureAwait(false);
    }

    private static (string? Last, int? Limit) ParsePaging(IQueryCollection query)
    {
        var last = query["last"].ToString();
        var n = query["n"].ToString();
        int? limit = null;
        if (n.Length > 0)
        {
            if (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                throw new OciException(OciErrorCode.Unsupported, $"n=\"{n}\" is not a non-negative number");
            }

            limit = parsed;
        }

        return (last.Length > 0 ? last : null, limit);
    }

    /// <summary>
    /// The names after <paramref name="last"/> a client may see, at most <paramref name="limit"/> of them, and whether
    /// another visible one follows. The store is asked for pages of the size wanted (plus one, to know whether more
    /// follow), and for more only as far as hidden names take their place, so a page costs the pages it must read.
    /// </summary>
    private static async Task<(List<string> Names, bool More)> CollectPageAsync(
        Func<string?, int, ValueTask<ListingPage>> list, string? last, int? limit, Func<string, bool>? hidden)
    {
        var wanted = limit ?? int.MaxValue;
        var batch = limit is { } n && n < int.MaxValue ? n + 1 : int.MaxValue;
        var names = new List<string>();
        var after = last;
        while (true)
        {
            var page = await list(after, batch).ConfigureAwait(false);
            foreach (var name in page.Names)
            {
                if (hidden?.Invoke(name) == true)
                {
                    continue;
                }

                if (names.Count == wanted)
                {
                    return (names, true);
                }

                names.Add(name);
            }

            if (!page.HasMore || page.Names.Count == 0)
            {
                return (names, false);
            }

            after = page.Names[^1];
        }
    }

    private static async Task WritePageAsync(HttpContext context, string path, List<string> names, bool more, int? limit, Action<Utf8JsonWriter, IEnumerable<string>> write)
    {
        if (limit is { } pageSize && names.Count > 0 && more)
        {
            context.Response.Headers.Link = string.Create(
                CultureInfo.InvariantCulture,
                $"<{path}?n={pageSize}&last={Uri.EscapeDataString(names[^1])}>; rel=\"next\"");
        }

        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            write(json, names);
        }

        await WriteJsonAsync(context, buffer, "application/json").ConfigureAwait(false);
    }

    private static async Task WriteJsonAsync(HttpContext context, ArrayBufferWriter<byte> buffer, string contentType)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = contentType;
        response.ContentLength = buffer.WrittenCount;
        if (!HttpMethods.IsHead(context.Request.Method))
        {
            await response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted).ConfigureAwait(false);
        }
    }
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
[System.Text.Json.Serialization.JsonSerializable(typeof(Descriptor))]
internal sealed partial class RegistryJsonContext : System.Text.Json.Serialization.JsonSerializerContext
{
}
