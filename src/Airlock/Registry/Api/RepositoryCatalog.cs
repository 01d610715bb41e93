using System.Collections.Concurrent;
using System.Globalization;
using Airlock.Content;
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
/// The repositories list of the console's API, filtered by what the asking user may pull. By name ascending, a
/// page walks the store's ordered listing (<see cref="IRepositoryStore.ListRepositoriesAsync"/>) from its cursor
/// and stops when full, so it costs the names it shows plus those the search and the access rules skip on the
/// way, never the whole store; only the rows shown are measured. Descending, it walks all the names back.
/// By tags, size or last push every visible repository must be measured: measurements are kept (a write
/// through this registry forgets its repository's at once, writes by another process serving the same
/// store show within <see cref="MaxAge"/>).
/// </summary>
internal sealed class RepositoryCatalog(IRegistryStore storage, TimeProvider time)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);
    public const int MaxLimit = 500;

    // How many names one listing call asks the store for while a page by name fills.
    private const int ListingBatch = 100;

    private readonly ConcurrentDictionary<string, (RepositorySummary Summary, DateTimeOffset At)> _summaries = new(StringComparer.Ordinal);

    public void Forget(string repository) => _summaries.TryRemove(repository, out _);

    public async Task<RepositoryPage> ListAsync(RepositoryQuery query, Func<string, bool> visible, CancellationToken cancellationToken)
    {
        bool Wanted(string name) => (query.Search.Length == 0 || name.Contains(query.Search, StringComparison.OrdinalIgnoreCase)) && visible(name);
        if (query.Sort == RepositorySort.Name)
        {
            return query.Descending
                ? await ListByNameDescendingAsync(await AllNamesAsync(cancellationToken).ConfigureAwait(false), query, Wanted, cancellationToken).ConfigureAwait(false)
                : await ListByNameAsync(query, Wanted, cancellationToken).ConfigureAwait(false);
        }

        var rows = new List<RepositorySummary>();
        foreach (var name in await AllNamesAsync(cancellationToken).ConfigureAwait(false))
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

    /// <summary>Every repository name in ordinal order (the sorts by a measurement need them all).</summary>
    public async Task<IReadOnlyList<string>> AllNamesAsync(CancellationToken cancellationToken) =>
        (await storage.Repositories.ListRepositoriesAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false)).Names;

    private async Task<RepositoryPage> ListByNameAsync(RepositoryQuery query, Func<string, bool> wanted, CancellationToken cancellationToken)
    {
        // Names come from the store a batch at a time; the search and the access rules see only those walked.
        var batch = Math.Max(query.Limit, ListingBatch);
        var page = new List<RepositorySummary>();
        var after = query.Cursor;
        var more = false;
        while (true)
        {
            var listing = await storage.Repositories.ListRepositoriesAsync(after, batch, cancellationToken).ConfigureAwait(false);
            var names = listing.Names;
            var i = 0;
            for (; i < names.Count && page.Count < query.Limit; i++)
            {
                if (wanted(names[i]) && await SummaryAsync(names[i], cancellationToken).ConfigureAwait(false) is { } summary)
                {
                    page.Add(summary);
                }
            }

            if (page.Count == query.Limit)
            {
                // A full page that did not reach the end may have more after it; the next page tells.
                more = i < names.Count || listing.HasMore;
                break;
            }

            if (!listing.HasMore || names.Count == 0)
            {
                break;
            }

            after = names[^1];
        }

        return new RepositoryPage(page, more ? page[^1].Name : null);
    }

    private async Task<RepositoryPage> ListByNameDescendingAsync(IReadOnlyList<string> names, RepositoryQuery query, Func<string, bool> wanted, CancellationToken cancellationToken)
    {
        // The last name before the cursor: a binary search, not a walk.
        var i = (query.Cursor is null ? names.Count : LowerBound(names, query.Cursor)) - 1;
        var page = new List<RepositorySummary>();
        for (; i >= 0 && page.Count < query.Limit; i--)
        {
            if (wanted(names[i]) && await SummaryAsync(names[i], cancellationToken).ConfigureAwait(false) is { } summary)
            {
                page.Add(summary);
            }
        }

        var more = page.Count == query.Limit && i >= 0;
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
        if (await repositories.ListTagsAsync(name, null, int.MaxValue, cancellationToken).ConfigureAwait(false) is not { } tags)
        {
            _summaries.TryRemove(name, out _);
            return null;
        }

        long size = 0;
        var counted = new HashSet<Oci.Digest>();
        var digests = repositories.ListManifestRevisionsAsync(name, cancellationToken)
            .Concat(repositories.ListBlobLinksAsync(name, cancellationToken).Select(link => link.Digest));
        await foreach (var digest in digests.ConfigureAwait(false))
        {
            if (counted.Add(digest) && await storage.Blobs.SizeAsync(digest, cancellationToken).ConfigureAwait(false) is { } bytes)
            {
                size += bytes;
            }
        }

        var lastChange = await repositories.LastChangeAsync(name, cancellationToken).ConfigureAwait(false);
        var summary = new RepositorySummary(name, tags.Names.Count, size, lastChange);
        _summaries[name] = (summary, now);
        return summary;
    }
}
