using System.Collections.Concurrent;
using System.Globalization;
using Airlock.Content.FileSystemStore;
using Airlock.Distribution;

namespace Airlock.Registry.Api;

/// <summary>How the repositories list is ordered.</summary>
public enum RepositorySort
{
    Name,
    Tags,
    Size,
    LastPush,
}

/// <summary>A request for one page of the repositories list.</summary>
/// <param name="Search">Keeps names containing it (case-insensitive); empty keeps all.</param>
/// <param name="Cursor">Where the page starts: <see cref="RepositoryPage.Next"/> of the page before, null for the first.</param>
public sealed record RepositoryQuery(string Search, RepositorySort Sort, bool Descending, int Limit, string? Cursor);

/// <summary>
/// The repositories list of the console's API, filtered by what the asking user may pull. By name, a page
/// walks the ordered names from its cursor and stops when full, so it costs the names it shows plus those
/// the search and the access rules skip on the way, never the whole store; only the rows shown are measured.
/// By tags, size or last push every visible repository must be measured: measurements are kept (a write
/// through this registry forgets its repository's at once, writes by another process serving the same
/// store show within <see cref="MaxAge"/>).
/// </summary>
internal sealed class RepositoryCatalog(RegistryStorage storage, TimeProvider time)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);
    public const int MaxLimit = 500;

    private readonly ConcurrentDictionary<string, (RepositorySummary Summary, DateTimeOffset At)> _summaries = new(StringComparer.Ordinal);

    public void Forget(string repository) => _summaries.TryRemove(repository, out _);

    public async Task<RepositoryPage> ListAsync(RepositoryQuery query, Func<string, bool> visible, CancellationToken cancellationToken)
    {
        var names = storage.Repositories.ListRepositories();
        bool Wanted(string name) => (query.Search.Length == 0 || name.Contains(query.Search, StringComparison.OrdinalIgnoreCase)) && visible(name);
        if (query.Sort == RepositorySort.Name)
        {
            return await ListByNameAsync(names, query, Wanted, cancellationToken).ConfigureAwait(false);
        }

        var rows = new List<RepositorySummary>();
        foreach (var name in names)
        {
            if (Wanted(name) && await SummaryAsync(name, cancellationToken).ConfigureAwait(false) is { } summary)
            {
                rows.Add(summary);
            }
        }

        Comparison<RepositorySummary> byValue = query.Sort switch
        {
            RepositorySort.Tags => (a, b) => a.Tags.CompareTo(b.Tags),
            RepositorySort.Size => (a, b) => a.Size.CompareTo(b.Size),
            _ => (a, b) => Nullable.Compare(a.LastPush, b.LastPush),
        };
        rows.Sort((a, b) =>
        {
            var order = query.Descending ? byValue(b, a) : byValue(a, b);
            return order != 0 ? order : string.CompareOrdinal(a.Name, b.Name);
        });
        var offset = 0;
        if (query.Cursor is { } cursor && !int.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out offset))
        {
            throw new OciException(OciErrorCode.Unsupported, $"cursor \"{cursor}\" is not one this listing gave");
        }

        var page = rows.Skip(offset).Take(query.Limit).ToList();
        var next = offset + page.Count < rows.Count ? (offset + page.Count).ToString(CultureInfo.InvariantCulture) : null;
        return new RepositoryPage(page, next);
    }

    private async Task<RepositoryPage> ListByNameAsync(IReadOnlyList<string> names, RepositoryQuery query, Func<string, bool> wanted, CancellationToken cancellationToken)
    {
        var step = query.Descending ? -1 : 1;
        int start;
        if (query.Cursor is null)
        {
            start = query.Descending ? names.Count - 1 : 0;
        }
        else
        {
            // The first name after the cursor in the page's direction: a binary search, not a walk.
            var at = LowerBound(names, query.Cursor);
            start = query.Descending ? at - 1 : (at < names.Count && names[at] == query.Cursor ? at + 1 : at);
        }

        var page = new List<RepositorySummary>();
        var i = start;
        for (; i >= 0 && i < names.Count && page.Count < query.Limit; i += step)
        {
            if (wanted(names[i]) && await SummaryAsync(names[i], cancellationToken).ConfigureAwait(false) is { } summary)
            {
                page.Add(summary);
            }
        }

        // A full page that did not reach the end may have more after it; the next page tells.
        var more = page.Count == query.Limit && i >= 0 && i < names.Count;
        return new RepositoryPage(page, more ? page[^1].Name : null);
    }

    private static int LowerBound(IReadOnlyList<string> names, string value)
    {
        int low = 0, high = names.Count;
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (string.CompareOrdinal(names[middle], value) < 0)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    /// <summary>
    /// Tags, bytes (every manifest revision and every blob the repository links, each once) and the last push
    /// (the newest change to its tags, revisions or links); null when the repository is gone.
    /// </summary>
    public async ValueTask<RepositorySummary?> SummaryAsync(string name, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_summaries.TryGetValue(name, out var cached) && now - cached.At < MaxAge)
        {
            return cached.Summary;
        }

        var repositories = storage.Repositories;
        if (repositories.ListTags(name) is not { } tags)
        {
            _summaries.TryRemove(name, out _);
            return null;
        }

        long size = 0;
        var counted = new HashSet<Oci.Digest>();
        foreach (var digest in repositories.ListManifestRevisions(name).Concat(repositories.ListBlobLinks(name).Select(l => l.Digest)))
        {
            if (counted.Add(digest) && await storage.Blobs.SizeAsync(digest, cancellationToken).ConfigureAwait(false) is { } bytes)
            {
                size += bytes;
            }
        }

        var summary = new RepositorySummary(name, tags.Count, size, repositories.LastChange(name));
        _summaries[name] = (summary, now);
        return summary;
    }
}
