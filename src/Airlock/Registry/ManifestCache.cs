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
/// process's entries, and a tag must read what the last PUT on any replica set. Such a store's entries are kept with
/// the repository's change version instead (<see cref="TryGetAt"/>, <see cref="AddAt"/>): a request reads the current
/// version (one read of the shared store) and serves an entry only when it was loaded at that same version.
/// </remarks>
internal sealed class ManifestCache(bool enabled = true)
{
    private const long MaxBytes = 64L << 20;
    private readonly ConcurrentDictionary<(string Repository, string Reference), CachedManifest> _entries = new();
    private readonly ConcurrentDictionary<(string Repository, string Reference), (long Version, CachedManifest Manifest)> _versioned = new();
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

    /// <summary>An entry loaded when the repository's change version was <paramref name="version"/>.</summary>
    public bool TryGetAt(string repository, string reference, long version, out CachedManifest manifest)
    {
        if (_versioned.TryGetValue((repository, reference), out var entry) && entry.Version == version)
        {
            manifest = entry.Manifest;
            return true;
        }

        manifest = null!;
        return false;
    }

    /// <summary>
    /// Keeps <paramref name="manifest"/>, loaded by reads made after the repository's change version
    /// <paramref name="version"/> was read: a write between them changed the version, so the entry is never served.
    /// </summary>
    public void AddAt(string repository, string reference, long version, CachedManifest manifest)
    {
        if (Interlocked.Add(ref _bytes, manifest.Content.Length) > MaxBytes)
        {
            Clear();
        }

        _versioned[(repository, reference)] = (version, manifest);
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
        _versioned.Clear();
        Interlocked.Exchange(ref _bytes, 0);
    }
}
