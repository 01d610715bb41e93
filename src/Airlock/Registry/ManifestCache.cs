using System.Collections.Concurrent;
using System.Globalization;
using Airlock.Oci;

namespace Airlock.Registry;

/// <summary>A manifest ready to serve: its bytes and the header values, computed once.</summary>
internal sealed class CachedManifest(byte[] content, string mediaType, Digest digest)
{
    public byte[] Content { get; } = content;

    public string MediaType { get; } = mediaType;

    public Digest Digest { get; } = digest;

    public string DigestText { get; } = digest.ToString();

    public string Length { get; } = content.Length.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Manifests by (repository, tag or digest), so a manifest GET is a dictionary hit. Writers change disk
/// first, then bump the generation and drop keys; a reader that loaded from disk while a writer ran drops
/// its own insert again, so a stale entry never outlives the write that made it stale.
/// </summary>
/// <remarks>
/// Off (<paramref name="enabled"/> false) for a store replicas share: another replica's write cannot invalidate this
/// process's entries, and a tag must read what the last PUT on any replica set.
/// </remarks>
internal sealed class ManifestCache(bool enabled = true)
{
    private const long MaxBytes = 64L << 20;
    private readonly ConcurrentDictionary<(string Repository, string Reference), CachedManifest> _entries = new();
    private long _generation;
    private long _bytes;

    public long Generation => Volatile.Read(ref _generation);

    public bool TryGet(string repository, string reference, out CachedManifest manifest) =>
        _entries.TryGetValue((repository, reference), out manifest!);

    public void Add(string repository, string reference, CachedManifest manifest, long generationBeforeLoad)
    {
        if (!enabled)
        {
            return;
        }

        if (Interlocked.Add(ref _bytes, manifest.Content.Length) > MaxBytes)
        {
            Clear();
        }

        var key = (repository, reference);
        _entries[key] = manifest;
        if (Generation != generationBeforeLoad)
        {
            _entries.TryRemove(KeyValuePair.Create(key, manifest));
        }
    }

    public void Invalidate(string repository, string reference)
    {
        Interlocked.Increment(ref _generation);
        _entries.TryRemove((repository, reference), out _);
    }

    public void InvalidateRepository(string repository)
    {
        Interlocked.Increment(ref _generation);
        foreach (var key in _entries.Keys)
        {
            if (string.Equals(key.Repository, repository, StringComparison.Ordinal))
            {
                _entries.TryRemove(key, out _);
            }
        }
    }

    private void Clear()
    {
        Interlocked.Increment(ref _generation);
        _entries.Clear();
        Interlocked.Exchange(ref _bytes, 0);
    }
}
