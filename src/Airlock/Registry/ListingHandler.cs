using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Airlock.Content.FileSystemStore;
using Airlock.Distribution;
using Airlock.Oci;
using Microsoft.AspNetCore.Http;

namespace Airlock.Registry;

/// <summary>The list endpoints: <c>tags/list</c>, <c>_catalog</c> (both paginated with n/last and a Link header) and <c>referrers</c>.</summary>
internal sealed class ListingHandler(RegistryStorage storage)
{
    public Task TagsAsync(HttpContext context, OciRoute route)
    {
        var tags = storage.Repositories.ListTags(route.Name)
            ?? throw new OciException(OciErrorCode.NameUnknown, $"repository {route.Name} is unknown");
        return WritePageAsync(context, OciRoute.ForTagList(route.Name).Path, tags, (json, page) => TagList.Write(json, route.Name, page));
    }

    /// <summary>The catalog, without the repositories <paramref name="hidden"/> names (those an anonymous client must not see).</summary>
    public Task CatalogAsync(HttpContext context, Func<string, bool>? hidden)
    {
        var repositories = storage.Repositories.ListRepositories();
        if (hidden is not null)
        {
            repositories = [.. repositories.Where(r => !hidden(r))];
        }

        return WritePageAsync(context, OciRoute.Catalog.Path, repositories, CatalogPage.Write);
    }

    public async Task ReferrersAsync(HttpContext context, OciRoute route)
    {
        var subject = route.Digest!.Value;
        var artifactType = context.Request.Query["artifactType"].ToString();
        IEnumerable<Descriptor> referrers = storage.Repositories.Exists(route.Name) ? storage.Repositories.ListReferrers(route.Name, subject) : [];
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

    private static async Task WritePageAsync(HttpContext context, string path, IReadOnlyList<string> items, Action<Utf8JsonWriter, IEnumerable<string>> write)
    {
        var query = context.Request.Query;
        var last = query["last"].ToString();
        int? limit = null;
        var n = query["n"].ToString();
        if (n.Length > 0)
        {
            if (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                throw new OciException(OciErrorCode.Unsupported, $"n=\"{n}\" is not a non-negative number");
            }

            limit = parsed;
        }

        var start = 0;
        if (last.Length > 0)
        {
            while (start < items.Count && string.CompareOrdinal(items[start], last) <= 0)
            {
                start++;
            }
        }

        var count = Math.Min(items.Count - start, limit ?? int.MaxValue);
        if (limit is { } pageSize && count > 0 && start + count < items.Count)
        {
            context.Response.Headers.Link = string.Create(
                CultureInfo.InvariantCulture,
                $"<{path}?n={pageSize}&last={Uri.EscapeDataString(items[start + count - 1])}>; rel=\"next\"");
        }

        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            write(json, items.Skip(start).Take(count));
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
