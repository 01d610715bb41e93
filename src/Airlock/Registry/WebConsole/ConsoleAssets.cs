using System.Collections.Frozen;
using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;
using Airlock.Distribution;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Airlock.Registry.WebConsole;

/// <summary>
/// The console's static files (built from <c>web/console/</c> by npm and embedded in this assembly as
/// <c>console/…</c> resources), served under <c>/ui/</c>: hashed assets cached for good, every other path
/// the single page (the browser-side router draws it), each compressed once (Brotli or gzip, as the browser
/// accepts) and revalidated by ETag. The page may load nothing but its own files and call nothing but this
/// registry (Content-Security-Policy), so it works inside the air gap as outside.
/// </summary>
internal sealed class ConsoleAssets
{
    public const string Prefix = "/ui";
    private const string ResourcePrefix = "console/";
    private const string Policy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly Lazy<ConsoleAssets> Embedded = new(() => new ConsoleAssets(typeof(ConsoleAssets).Assembly));

    private readonly FrozenDictionary<string, Asset> _assets;
    private readonly Asset _page;

    private ConsoleAssets(Assembly assembly)
    {
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            assets[name[ResourcePrefix.Length..]] = new Asset(copy.ToArray(), ContentType(name));
        }

        _assets = assets.ToFrozenDictionary(StringComparer.Ordinal);
        _page = _assets.GetValueOrDefault("index.html")
            ?? throw new InvalidOperationException("this build of Airlock has no console files embedded (web/console was not built); run with --ui=false or rebuild");
    }

    /// <summary>The files embedded in this build (read once, on first use).</summary>
    public static ConsoleAssets Load() => Embedded.Value;

    public static bool Owns(string path) => path == Prefix || path.StartsWith(Prefix + "/", StringComparison.Ordinal);

    public Task ServeAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        var path = request.Path.Value!;
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            throw new OciException(OciErrorCode.MethodNotAllowed, $"{request.Method} is not allowed on the console");
        }

        if (path == Prefix)
        {
            response.StatusCode = StatusCodes.Status308PermanentRedirect;
            response.Headers.Location = Prefix + "/";
            return Task.CompletedTask;
        }

        var relative = path[(Prefix.Length + 1)..];
        Asset asset;
        if (relative.StartsWith("assets/", StringComparison.Ordinal))
        {
            asset = _assets.GetValueOrDefault(relative) ?? throw new OciException(OciErrorCode.NotFound, $"{path} is not a file of the console");
            // Asset names carry a hash of their content (web/console/build.mjs).
            response.Headers.CacheControl = "public, max-age=31536000, immutable";
        }
        else
        {
            asset = _page;
            response.Headers.CacheControl = "no-cache";
        }

        var headers = response.Headers;
        headers.ContentSecurityPolicy = Policy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers.Vary = HeaderNames.AcceptEncoding;
        headers.ETag = asset.ETag;
        if (request.Headers.IfNoneMatch.ToString() == asset.ETag)
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        var accepted = request.Headers.AcceptEncoding.ToString();
        var (body, encoding) = accepted.Contains("br", StringComparison.Ordinal) ? (asset.Brotli, "br")
            : accepted.Contains("gzip", StringComparison.Ordinal) ? (asset.Gzip, "gzip")
            : (asset.Content, null);
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = asset.ContentType;
        if (encoding is not null)
        {
            headers.ContentEncoding = encoding;
        }

        response.ContentLength = body.Length;
        return HttpMethods.IsHead(request.Method) ? Task.CompletedTask : response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }

    private static string ContentType(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".json" => "application/json",
        _ => "application/octet-stream",
    };

    private sealed class Asset(byte[] content, string contentType)
    {
        private readonly Lazy<byte[]> _brotli = new(() => Compress(content, s => new BrotliStream(s, CompressionLevel.SmallestSize)));
        private readonly Lazy<byte[]> _gzip = new(() => Compress(content, s => new GZipStream(s, CompressionLevel.SmallestSize)));

        public byte[] Content { get; } = content;

        public string ContentType { get; } = contentType;

        public string ETag { get; } = "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 12)) + "\"";

        public byte[] Brotli => _brotli.Value;

        public byte[] Gzip => _gzip.Value;

        private static byte[] Compress(byte[] content, Func<Stream, Stream> compressor)
        {
            using var output = new MemoryStream();
            using (var compressing = compressor(output))
            {
                compressing.Write(content);
            }

            return output.ToArray();
        }
    }
}
