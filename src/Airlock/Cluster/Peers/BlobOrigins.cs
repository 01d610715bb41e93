using System.Collections.Concurrent;
using System.Text;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Cluster.Peers;

/// <summary>
/// Which registry each stored blob was fetched from (a blob is served to peers only under that registry's name), kept
/// on disk beside the p2p store so that after a restart a node serves the blobs it holds at once instead of only
/// after fetching them again. An append-only file of <c>digest registry</c> lines, compacted at every start: a line
/// torn by a crash, or one whose blob is gone, is dropped, so the worst a crash costs is that one blob is not served to
/// peers until it is fetched again (the safe side: never a blob under a registry it did not come from).
/// </summary>
internal sealed class BlobOrigins : IDisposable
{
    public const string FileName = "origins";

    private readonly ConcurrentDictionary<(Digest Digest, string Registry), byte> _origins = new();
    private readonly Lock _gate = new();
    private readonly FileStream _journal;

    private BlobOrigins(FileStream journal) => _journal = journal;

    /// <summary>Reads the file in <paramref name="directory"/>, keeps the lines of blobs <paramref name="held"/> says are stored, and rewrites it so.</summary>
    public static BlobOrigins Open(string directory, Func<Digest, bool> held)
    {
        var path = Path.Combine(directory, FileName);
        var kept = new List<(Digest, string)>();
        if (File.Exists(path))
        {
            foreach (var line in File.ReadLines(path, Encoding.UTF8))
            {
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                if (space > 0 && space < line.Length - 1 && Digest.TryParse(line[..space], out var digest) && held(digest)
                    && line[(space + 1)..] is var registry && !registry.Contains(' ', StringComparison.Ordinal))
                {
                    kept.Add((digest, registry));
                }
            }
        }

        var distinct = kept.Distinct().ToList();
        AtomicFile.Write(path, Encoding.UTF8.GetBytes(string.Concat(distinct.Select(o => $"{o.Item1} {o.Item2}\n"))), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var origins = new BlobOrigins(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read));
        foreach (var origin in distinct)
        {
            origins._origins[origin] = 0;
        }

        return origins;
    }

    public bool Contains(Digest digest, string registry) => _origins.ContainsKey((digest, registry));

    /// <summary>The registries each recorded blob came from, as of now.</summary>
    public Dictionary<Digest, List<string>> Snapshot() =>
        _origins.Keys.GroupBy(o => o.Digest).ToDictionary(g => g.Key, g => g.Select(o => o.Registry).ToList());

    /// <summary>Records that <paramref name="digest"/> was stored as fetched from <paramref name="registry"/> (on disk before it is served so).</summary>
    public void Add(Digest digest, string registry)
    {
        if (_origins.ContainsKey((digest, registry)))
        {
            return;
        }

        var line = Encoding.UTF8.GetBytes($"{digest} {registry}\n");
        lock (_gate)
        {
            _journal.Write(line);
            _journal.Flush();
        }

        _origins[(digest, registry)] = 0;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _journal.Dispose();
        }
    }
}
