using System.Text.Json;
using System.Text.Json.Serialization;
using Airlock.IO;

namespace Airlock.Node.ImagesDirectory;

/// <summary>One file as it was when its images were last imported.</summary>
public sealed record CachedImageFile
{
    [JsonPropertyName("size")]
    public long Size { get; init; }

    /// <summary>UTC; written as RFC 3339 with "Z" as Go's <c>time.Time</c> is, so K3s and Airlock read each other's file.</summary>
    [JsonPropertyName("modTime")]
    public DateTime ModifiedTime { get; init; }

    [JsonPropertyName("images")]
    public IReadOnlyList<string> Images { get; init; } = [];
}

/// <summary>
/// K3s's optional <c>.cache.json</c> in the images directory, in K3s's own format (<c>pkg/agent/containerd/watcher.go</c>,
/// k3s-io/k3s#12237 and #14266): absolute file path → <c>size</c>, <c>modTime</c> and the <c>images</c> it held. As in
/// K3s it is opt-in: used only when the file exists (<c>touch .cache.json</c>; an empty file is an empty cache) and
/// never created. A file whose size and mtime still match was imported already and is skipped at start-up. An
/// unreadable cache is treated as empty, so the worst a damaged one costs is a full re-import.
/// </summary>
internal static class ImagesDirectoryCache
{
    public const string FileName = ".cache.json";

    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, FileName));

    public static async Task<Dictionary<string, CachedImageFile>> ReadAsync(string directory, CancellationToken cancellationToken)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path) || new FileInfo(path).Length == 0)
        {
            return new(StringComparer.Ordinal);
        }

        try
        {
            await using var stream = File.OpenRead(path);
            var read = await JsonSerializer.DeserializeAsync(stream, ImagesDirectoryJsonContext.Default.DictionaryStringCachedImageFile, cancellationToken).ConfigureAwait(false);
            return read is null ? new(StringComparer.Ordinal) : new(read, StringComparer.Ordinal);
        }
        catch (JsonException)
        {
            return new(StringComparer.Ordinal);
        }
    }

    /// <summary>Written through <see cref="AtomicFile"/>, so a crash never leaves half a cache.</summary>
    public static Task WriteAsync(string directory, Dictionary<string, CachedImageFile> entries, CancellationToken cancellationToken) =>
        AtomicFile.WriteAsync(Path.Combine(directory, FileName), AtomicFile.Readable,
            (stream, token) => JsonSerializer.SerializeAsync(stream, entries, ImagesDirectoryJsonContext.Default.DictionaryStringCachedImageFile, token),
            cancellationToken);

    public static bool IsUnchanged(CachedImageFile? cached, FileInfo file) =>
        cached is not null && cached.Size == file.Length && cached.ModifiedTime.ToUniversalTime() == file.LastWriteTimeUtc;
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(Dictionary<string, CachedImageFile>))]
internal sealed partial class ImagesDirectoryJsonContext : JsonSerializerContext;
