using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Airlock.Content.Metadata;
using Airlock.Oci;
using Etcdserverpb;
using Google.Protobuf;

namespace Airlock.Content.Etcd;

/// <summary>
/// What each repository holds, as etcd keys (every replica reads and writes the same ones):
/// <c>catalog/&lt;name&gt;</c> (written with every write to the repository, so the catalog is one ordered range),
/// <c>repos/&lt;name&gt;/_links/&lt;digest&gt;</c> (the time it was made), <c>…/_revisions/&lt;digest&gt;</c> (the media
/// type), <c>…/_tags/&lt;tag&gt;</c> (the digest), <c>…/_referrers/&lt;subject&gt;/&lt;digest&gt;</c> (the descriptor) and
/// <c>authonly/&lt;name&gt;</c>. Repository path components never start with '_', so no repository's keys fall inside
/// another's ranges. Each write is one etcd transaction (linearizable: visible to every replica once it returned);
/// etcd's range reads are ordered by key, which is ordinal order, so a page of tags or repositories is one range read.
/// </summary>
internal sealed class EtcdRepositoryStore(MetadataStore etcd, TimeProvider time) : IRepositoryStore
{
    private static readonly ByteString Empty = ByteString.Empty;

    public async ValueTask<bool> ExistsAsync(string repository, CancellationToken cancellationToken) =>
        await etcd.GetAsync(Catalog(repository), cancellationToken).ConfigureAwait(false) is not null;

    public async ValueTask<BlobLink?> GetBlobLinkAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        await etcd.GetAsync(Link(repository, digest), cancellationToken).ConfigureAwait(false) is { } kv
            ? new BlobLink(digest, ParseTime(kv.Value))
            : null;

    public async ValueTask LinkBlobAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        await WriteAsync(repository, etcd.PutOp(Link(repository, digest), FormatTime(time.GetUtcNow())), cancellationToken).ConfigureAwait(false);

    public async ValueTask<bool> UnlinkBlobAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        await DeleteAsync(repository, Link(repository, digest), cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<BlobLink> ListBlobLinksAsync(string repository, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var prefix = Repository(repository) + "_links/";
        await foreach (var kv in etcd.ScanAsync(prefix, keysOnly: false, cancellationToken).ConfigureAwait(false))
        {
            if (Digest.TryParse(etcd.Relative(kv.Key)[prefix.Length..], out var digest))
            {
                yield return new BlobLink(digest, ParseTime(kv.Value));
            }
        }
    }

    public async ValueTask<string?> ManifestMediaTypeAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        (await etcd.GetAsync(Revision(repository, digest), cancellationToken).ConfigureAwait(false))?.Value.ToStringUtf8();

    public async ValueTask PutManifestRevisionAsync(string repository, Digest digest, string mediaType, CancellationToken cancellationToken) =>
        await WriteAsync(repository, etcd.PutOp(Revision(repository, digest), ByteString.CopyFromUtf8(mediaType)), cancellationToken).ConfigureAwait(false);

    public async ValueTask<bool> DeleteManifestRevisionAsync(string repository, Digest digest, CancellationToken cancellationToken) =>
        await DeleteAsync(repository, Revision(repository, digest), cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<Digest> ListManifestRevisionsAsync(string repository, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var prefix = Repository(repository) + "_revisions/";
        await foreach (var kv in etcd.ScanAsync(prefix, keysOnly: true, cancellationToken).ConfigureAwait(false))
        {
            if (Digest.TryParse(etcd.Relative(kv.Key)[prefix.Length..], out var digest))
            {
                yield return digest;
            }
        }
    }

    public async ValueTask<Digest?> ResolveTagAsync(string repository, string tag, CancellationToken cancellationToken) =>
        await etcd.GetAsync(Tag(repository, tag), cancellationToken).ConfigureAwait(false) is { } kv && Digest.TryParse(kv.Value.ToStringUtf8(), out var digest)
            ? digest
            : null;

    public async ValueTask SetTagAsync(string repository, string tag, Digest digest, CancellationToken cancellationToken) =>
        await WriteAsync(repository, etcd.PutOp(Tag(repository, tag), ByteString.CopyFromUtf8(digest.ToString())), cancellationToken).ConfigureAwait(false);

    public async ValueTask<bool> DeleteTagAsync(string repository, string tag, CancellationToken cancellationToken) =>
        await DeleteAsync(repository, Tag(repository, tag), cancellationToken).ConfigureAwait(false);

    public async ValueTask<ListingPage?> ListTagsAsync(string repository, string? last, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var prefix = Repository(repository) + "_tags/";
        if (limit == int.MaxValue)
        {
            if (!await ExistsAsync(repository, cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            return await ListAllAsync(prefix, last, cancellationToken).ConfigureAwait(false);
        }

        // One transaction: whether the repository exists and the page after last, from the same revision.
        var response = await etcd.TxnAsync(new TxnRequest
        {
            Success =
            {
                new RequestOp { RequestRange = new RangeRequest { Key = etcd.Key(Catalog(repository)), CountOnly = true } },
                etcd.RangeOp(prefix, prefix + After(last), limit, keysOnly: true),
            },
        }, cancellationToken).ConfigureAwait(false);
        if (response.Responses[0].ResponseRange.Count == 0)
        {
            return null;
        }

        var page = response.Responses[1].ResponseRange;
        return new ListingPage(page.Kvs.Select(kv => etcd.Relative(kv.Key)[prefix.Length..]).ToArray(), page.More);
    }

    public async ValueTask<ListingPage> ListRepositoriesAsync(string? last, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        const string prefix = "catalog/";
        if (limit == int.MaxValue)
        {
            return await ListAllAsync(prefix, last, cancellationToken).ConfigureAwait(false);
        }

        var page = await etcd.RangeAsync(prefix, prefix + After(last), limit, keysOnly: true, cancellationToken).ConfigureAwait(false);
        return new ListingPage(page.Kvs.Select(kv => etcd.Relative(kv.Key)[prefix.Length..]).ToArray(), page.More);
    }

    public async ValueTask AddReferrerAsync(string repository, Digest subject, Descriptor referrer, CancellationToken cancellationToken) =>
        await WriteAsync(
            repository,
            etcd.PutOp(Referrer(repository, subject, referrer.Digest), ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(referrer, EtcdJsonContext.Default.Descriptor))),
            cancellationToken).ConfigureAwait(false);

    public async ValueTask RemoveReferrerAsync(string repository, Digest subject, Digest referrer, CancellationToken cancellationToken) =>
        await DeleteAsync(repository, Referrer(repository, subject, referrer), cancellationToken).ConfigureAwait(false);

    public async ValueTask<IReadOnlyList<Descriptor>> ListReferrersAsync(string repository, Digest subject, CancellationToken cancellationToken)
    {
        var referrers = new List<Descriptor>();
        await foreach (var kv in etcd.ScanAsync(Referrers(repository, subject), keysOnly: false, cancellationToken).ConfigureAwait(false))
        {
            if (JsonSerializer.Deserialize(kv.Value.Span, EtcdJsonContext.Default.Descriptor) is { } descriptor)
            {
                referrers.Add(descriptor);
            }
        }

        return referrers;
    }

    public async ValueTask MarkAuthenticatedOnlyAsync(string repository, CancellationToken cancellationToken) =>
        await WriteAsync(repository, etcd.PutOp("authonly/" + CheckRepository(repository), Empty), cancellationToken).ConfigureAwait(false);

    public async ValueTask<IReadOnlyList<string>> ListAuthenticatedOnlyAsync(CancellationToken cancellationToken)
    {
        const string prefix = "authonly/";
        var names = new List<string>();
        await foreach (var kv in etcd.ScanAsync(prefix, keysOnly: true, cancellationToken).ConfigureAwait(false))
        {
            names.Add(etcd.Relative(kv.Key)[prefix.Length..]);
        }

        return names;
    }

    /// <summary>One write to a repository and its catalog entry (holding the time of the repository's last change), atomically.</summary>
    private async Task WriteAsync(string repository, RequestOp write, CancellationToken cancellationToken) =>
        await etcd.TxnAsync(new TxnRequest { Success = { write, etcd.PutOp(Catalog(repository), FormatTime(time.GetUtcNow())) } }, cancellationToken).ConfigureAwait(false);

    /// <summary>Deletes one key of an existing repository and stamps its last change, atomically; whether the key was there.</summary>
    private async Task<bool> DeleteAsync(string repository, string key, CancellationToken cancellationToken)
    {
        var response = await etcd.TxnAsync(new TxnRequest
        {
            Compare = { etcd.Exists(Catalog(repository)) },
            Success = { etcd.DeleteOp(key), etcd.PutOp(Catalog(repository), FormatTime(time.GetUtcNow())) },
        }, cancellationToken).ConfigureAwait(false);
        return response.Succeeded && response.Responses[0].ResponseDeleteRange.Deleted > 0;
    }

    public async ValueTask<DateTimeOffset?> LastChangeAsync(string repository, CancellationToken cancellationToken) =>
        await etcd.GetAsync(Catalog(repository), cancellationToken).ConfigureAwait(false) is { } kv ? ParseTime(kv.Value) : null;

    /// <summary>The catalog key's revision: every write to the repository rewrites that key in its own transaction.</summary>
    public async ValueTask<long?> ChangeVersionAsync(string repository, CancellationToken cancellationToken) =>
        await etcd.GetAsync(Catalog(repository), cancellationToken).ConfigureAwait(false) is { } kv ? kv.ModRevision : null;

    public async ValueTask<bool> DeleteRepositoryIfEmptyAsync(string repository, CancellationToken cancellationToken)
    {
        // One transaction: the catalog entry goes only if no key of the repository (nor its mark) exists at that revision,
        // so a write racing it either lands first (and the repository is kept) or after it (and creates it again).
        // Its own keys all start with "_" after the name, so a nested repository's keys (repos/a/b/…) are not counted for a.
        var keys = etcd.Key(Repository(repository) + "_");
        var response = await etcd.TxnAsync(new TxnRequest
        {
            Compare =
            {
                etcd.Exists(Catalog(repository)),
                etcd.Missing("authonly/" + CheckRepository(repository)),
                new Compare
                {
                    Key = keys,
                    RangeEnd = MetadataStore.PrefixEnd(keys),
                    Target = Compare.Types.CompareTarget.Version,
                    Result = Compare.Types.CompareResult.Equal,
                    Version = 0,
                },
            },
            Success = { etcd.DeleteOp(Catalog(repository)) },
        }, cancellationToken).ConfigureAwait(false);
        return response.Succeeded;
    }

    /// <summary>The catalog is written with every write to a repository, in the same transaction: nothing to reconcile.</summary>
    public ValueTask<ReconciledListings> ReconcileListingsAsync(CancellationToken cancellationToken) => ValueTask.FromResult(new ReconciledListings(0, null));

    /// <summary>Every name under <paramref name="prefix"/> after <paramref name="last"/>, read in pages (a walk of everything).</summary>
    private async Task<ListingPage> ListAllAsync(string prefix, string? last, CancellationToken cancellationToken)
    {
        var all = new List<string>();
        await foreach (var kv in etcd.ScanAsync(prefix, keysOnly: true, cancellationToken).ConfigureAwait(false))
        {
            var name = etcd.Relative(kv.Key)[prefix.Length..];
            if (last is null || string.CompareOrdinal(name, last) > 0)
            {
                all.Add(name);
            }
        }

        return new ListingPage(all, false);
    }

    /// <summary>The first key after <paramref name="last"/>, whether or not it exists.</summary>
    private static string After(string? last) => last is null ? string.Empty : last + "\0";

    internal static ByteString FormatTime(DateTimeOffset value) =>
        ByteString.CopyFromUtf8(value.UtcTicks.ToString(CultureInfo.InvariantCulture));

    internal static DateTimeOffset ParseTime(ByteString value) =>
        long.TryParse(value.ToStringUtf8(), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            ? new DateTimeOffset(ticks, TimeSpan.Zero)
            : DateTimeOffset.MinValue;

    private static string Catalog(string repository) => "catalog/" + CheckRepository(repository);

    private static string Repository(string repository) => "repos/" + CheckRepository(repository) + "/";

    private static string Link(string repository, Digest digest) => Repository(repository) + "_links/" + digest;

    private static string Revision(string repository, Digest digest) => Repository(repository) + "_revisions/" + digest;

    private static string Tag(string repository, string tag) =>
        ImageReference.IsValidTag(tag) ? Repository(repository) + "_tags/" + tag : throw new ArgumentException($"tag \"{tag}\" is invalid", nameof(tag));

    private static string Referrers(string repository, Digest subject) => Repository(repository) + "_referrers/" + subject + "/";

    private static string Referrer(string repository, Digest subject, Digest referrer) => Referrers(repository, subject) + referrer;

    private static string CheckRepository(string repository) =>
        ImageReference.IsValidRepository(repository) ? repository : throw new ArgumentException($"repository \"{repository}\" is invalid", nameof(repository));
}
