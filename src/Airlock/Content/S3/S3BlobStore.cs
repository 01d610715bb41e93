using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Airlock.Content.Metadata;
using Airlock.Oci;
using Google.Protobuf;

namespace Airlock.Content.S3;

/// <summary>
/// Blobs in the bucket under their content address (<c>blobs/&lt;alg&gt;/&lt;hex&gt;</c>), made visible by an etcd key
/// (<c>blobs/&lt;digest&gt;</c> = size and last reference time) written only after the object is whole and verified: the
/// key is what <see cref="StatAsync"/> and <see cref="ListAsync"/> see, so an object an interrupted commit left without
/// its key is never served; garbage collection finds such objects through <see cref="IUnpublishedBlobs"/> and removes
/// them after the grace period. A writer hashes as it buffers parts on local disk; its multipart upload
/// lives under <c>ingest/&lt;replica lease&gt;/</c> until the commit, so a replica opening the store aborts exactly those
/// of replicas whose lease is gone. A writer whose digest was announced up front (a monolithic push) uploads its parts
/// straight to the content address instead and completes them there only once its own hash matched: no copy (a
/// 512 MiB push spent its last seconds copying), and an incomplete multipart upload is never an object anyone reads.
/// While it runs, <c>blobingest/&lt;upload id&gt;</c> (on the replica's lease) says it is in flight; one without that
/// key (its replica died) is swept by garbage collection as unpublished content after the grace period.
/// </summary>
internal sealed class S3BlobStore(S3Bucket bucket, MetadataStore etcd, TimeProvider time, string bufferDirectory, int partSize, TimeSpan? redirectValidity) : IBlobStore, IBlobRedirects, IUnpublishedBlobs
{
    /// <summary>Small blobs (manifests) are immutable under their digest: kept in memory once read.</summary>
    private const int CachedBlobLimit = 4 << 20;
    private const int CacheEntries = 4096;

    private readonly ConcurrentDictionary<Digest, byte[]> _smallBlobs = new();

    internal S3Bucket Bucket => bucket;

    internal MetadataStore Etcd => etcd;

    /// <summary>Called between a commit's object and its key (tests: a commit interrupted there, as by a crash).</summary>
    internal Func<Digest, CancellationToken, Task>? BeforeKeyWritten { get; set; }

    internal static string ObjectKey(Digest digest) => $"blobs/{digest.Algorithm}/{digest.Encoded}";

    private static string MetadataKey(Digest digest) => "blobs/" + digest;

    public async ValueTask<BlobInfo?> StatAsync(Digest digest, CancellationToken cancellationToken) =>
        await etcd.GetAsync(MetadataKey(digest), cancellationToken).ConfigureAwait(false) is { } kv && Parse(digest, kv.Value) is { } info ? info : null;

    public async ValueTask<Stream?> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        if (_smallBlobs.TryGetValue(digest, out var cached))
        {
            return new MemoryStream(cached, writable: false);
        }

        if (await StatAsync(digest, cancellationToken).ConfigureAwait(false) is null)
        {
            return null;
        }

        return await bucket.GetAsync(bucket.Key(ObjectKey(digest)), 0, cancellationToken).ConfigureAwait(false);
    }

    public async Task<byte[]?> ReadSmallAsync(Digest digest, int maxBytes, CancellationToken cancellationToken)
    {
        if (_smallBlobs.TryGetValue(digest, out var cached))
        {
            // Still stored? A collected blob must not be served from memory.
            return await etcd.GetAsync(MetadataKey(digest), cancellationToken).ConfigureAwait(false) is null ? Forget(digest) : cached.Length <= maxBytes ? cached : null;
        }

        if (await StatAsync(digest, cancellationToken).ConfigureAwait(false) is not { } info || info.Size > maxBytes)
        {
            return null;
        }

        var stream = await bucket.GetAsync(bucket.Key(ObjectKey(digest)), 0, cancellationToken).ConfigureAwait(false);
        if (stream is null)
        {
            return null;
        }

        await using (stream.ConfigureAwait(false))
        {
            var bytes = new byte[info.Size];
            await stream.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
            if (bytes.Length <= CachedBlobLimit)
            {
                if (_smallBlobs.Count >= CacheEntries)
                {
                    _smallBlobs.Clear();
                }

                _smallBlobs[digest] = bytes;
            }

            return bytes;
        }
    }

    private byte[]? Forget(Digest digest)
    {
        _smallBlobs.TryRemove(digest, out _);
        return null;
    }

    public string? LocalPath(Digest digest) => null;

    /// <summary>With <c>--s3-redirect</c>: a presigned URL that lets the client GET the blob straight from the object store.</summary>
    public async ValueTask<Uri?> RedirectAsync(Digest digest, CancellationToken cancellationToken) =>
        redirectValidity is { } validity ? await bucket.PresignAsync(bucket.Key(ObjectKey(digest)), validity, time.GetUtcNow()).ConfigureAwait(false) : null;

    public async ValueTask<IBlobWriter> BeginWriteAsync(string algorithm, CancellationToken cancellationToken)
    {
        var lease = await etcd.LeaseAsync(cancellationToken).ConfigureAwait(false);
        var key = bucket.Key($"{IngestPrefix}{lease.ToString("x", CultureInfo.InvariantCulture)}/{Guid.NewGuid():N}");
        return new Writer(this, algorithm, new PartUploader(bucket, key, bufferDirectory, partSize, Digest.CreateHash(algorithm)), null);
    }

    public async ValueTask<IBlobWriter> BeginWriteAsync(Digest announced, CancellationToken cancellationToken)
    {
        var lease = await etcd.LeaseAsync(cancellationToken).ConfigureAwait(false);
        var uploader = new PartUploader(bucket, bucket.Key(ObjectKey(announced)), bufferDirectory, partSize, Digest.CreateHash(announced.Algorithm))
        {
            // Before any part is sent: the sweep takes a multipart upload without this key for one its replica abandoned.
            Started = (uploadId, ct) => etcd.PutAsync(InFlightKey(uploadId), ByteString.Empty, lease, ct),
        };
        return new Writer(this, announced.Algorithm, uploader, announced);
    }

    internal const string IngestPrefix = "ingest/";

    private const string InFlightPrefix = "blobingest/";

    private static string InFlightKey(string uploadId) => InFlightPrefix + uploadId;

    public async ValueTask TouchAsync(Digest digest, CancellationToken cancellationToken)
    {
        if (await etcd.GetAsync(MetadataKey(digest), cancellationToken).ConfigureAwait(false) is { } kv && Parse(digest, kv.Value) is { } info)
        {
            // Only if it is still there (a sweep may have just removed it).
            await etcd.TxnAsync(new Etcdserverpb.TxnRequest
            {
                Compare = { etcd.Unchanged(MetadataKey(digest), kv.ModRevision) },
                Success = { etcd.PutOp(MetadataKey(digest), Format(info.Size, time.GetUtcNow())) },
            }, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask<bool> DeleteAsync(Digest digest, CancellationToken cancellationToken)
    {
        // The key first: from then on nobody sees the blob, and an object left by a failure below is only garbage.
        var deleted = await etcd.DeleteAsync(MetadataKey(digest), cancellationToken).ConfigureAwait(false) > 0;
        _smallBlobs.TryRemove(digest, out _);
        if (deleted)
        {
            await bucket.DeleteAsync(bucket.Key(ObjectKey(digest)), cancellationToken).ConfigureAwait(false);
        }

        return deleted;
    }

    public async IAsyncEnumerable<BlobInfo> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var kv in etcd.ScanAsync("blobs/", keysOnly: false, cancellationToken).ConfigureAwait(false))
        {
            if (Digest.TryParse(etcd.Relative(kv.Key)["blobs/".Length..], out var digest) && Parse(digest, kv.Value) is { } info)
            {
                yield return info;
            }
        }
    }

    /// <summary>
    /// Makes verified content visible: an object under the content address (copied from <paramref name="ingestKey"/>,
    /// or put from <paramref name="small"/>), then its key. Content already stored is touched instead.
    /// </summary>
    internal async Task PublishAsync(Digest digest, long size, string? ingestKey, Func<Task<Stream>>? small, CancellationToken cancellationToken)
    {
        if (await StatAsync(digest, cancellationToken).ConfigureAwait(false) is not null)
        {
            await TouchAsync(digest, cancellationToken).ConfigureAwait(false);
            if (ingestKey is not null)
            {
                await bucket.DeleteAsync(ingestKey, cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        var target = bucket.Key(ObjectKey(digest));
        if (ingestKey is not null)
        {
            await bucket.CopyAsync(ingestKey, target, size, cancellationToken).ConfigureAwait(false);
            await bucket.DeleteAsync(ingestKey, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var content = await small!().ConfigureAwait(false);
            await using (content.ConfigureAwait(false))
            {
                await bucket.PutAsync(target, content, cancellationToken).ConfigureAwait(false);
            }
        }

        if (BeforeKeyWritten is { } hook)
        {
            await hook(digest, cancellationToken).ConfigureAwait(false);
        }

        await etcd.PutAsync(MetadataKey(digest), Format(size, time.GetUtcNow()), 0, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Objects under <c>blobs/</c> whose key is missing: what commits interrupted after their copy or put left.</summary>
    public async IAsyncEnumerable<BlobInfo> ListUnpublishedAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Keys first: an object committed after this scan is young, and the grace period keeps it.
        var published = new HashSet<Digest>();
        await foreach (var blob in ListAsync(cancellationToken).ConfigureAwait(false))
        {
            published.Add(blob.Digest);
        }

        var root = bucket.Key("blobs/");
        await foreach (var (key, size, written) in bucket.ListObjectsAsync(root, cancellationToken).ConfigureAwait(false))
        {
            if (ParseObjectKey(root, key) is { } digest && !published.Contains(digest))
            {
                yield return new BlobInfo(digest, size, written);
            }
        }

        // Multipart uploads to a content address whose replica is gone (no in-flight key): never completed, never seen.
        await foreach (var (key, uploadId, initiated) in bucket.ListMultipartAsync(root, cancellationToken).ConfigureAwait(false))
        {
            if (ParseObjectKey(root, key) is { } digest && await etcd.GetAsync(InFlightKey(uploadId), cancellationToken).ConfigureAwait(false) is null)
            {
                yield return new BlobInfo(digest, 0, initiated);
            }
        }
    }

    private static Digest? ParseObjectKey(string root, string key)
    {
        var address = key[root.Length..];
        var slash = address.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 && Digest.TryParse(string.Concat(address.AsSpan(0, slash), ":", address.AsSpan(slash + 1)), out var digest) ? digest : null;
    }

    public async ValueTask<bool> DeleteUnpublishedAsync(Digest digest, DateTimeOffset writtenBefore, CancellationToken cancellationToken)
    {
        var key = bucket.Key(ObjectKey(digest));
        var aborted = false;
        await foreach (var (uploadKey, uploadId, initiated) in bucket.ListMultipartAsync(key, cancellationToken).ConfigureAwait(false))
        {
            // Checked again, as below: an upload in flight has its key (the sweep lease keeps new ones young).
            if (uploadKey == key && initiated <= writtenBefore && await etcd.GetAsync(InFlightKey(uploadId), cancellationToken).ConfigureAwait(false) is null)
            {
                await bucket.AbortMultipartAsync(key, uploadId, cancellationToken).ConfigureAwait(false);
                aborted = true;
            }
        }

        // Checked again: a commit since the listing either wrote the key or wrote the object again (a new time).
        if (await etcd.GetAsync(MetadataKey(digest), cancellationToken).ConfigureAwait(false) is not null
            || await bucket.LastModifiedAsync(key, cancellationToken).ConfigureAwait(false) is not { } written
            || written > writtenBefore)
        {
            return aborted;
        }

        _smallBlobs.TryRemove(digest, out _);
        await bucket.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Hashes an object (content committed under a digest of another algorithm than it was hashed with).</summary>
    internal async Task<Digest> HashAsync(Stream content, string algorithm, CancellationToken cancellationToken)
    {
        using var hash = Digest.CreateHash(algorithm);
        var buffer = ArrayPool<byte>.Shared.Rent(256 << 10);
        try
        {
            int read;
            while ((read = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return Digest.FromHash(algorithm, hash.GetHashAndReset());
    }

    private static ByteString Format(long size, DateTimeOffset at) =>
        ByteString.CopyFromUtf8(string.Create(CultureInfo.InvariantCulture, $"{size} {at.UtcTicks}"));

    private static BlobInfo? Parse(Digest digest, ByteString value)
    {
        var parts = value.ToStringUtf8().Split(' ');
        return parts.Length == 2
            && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var size)
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            ? new BlobInfo(digest, size, new DateTimeOffset(ticks, TimeSpan.Zero))
            : null;
    }

    /// <summary>
    /// Verifies what <paramref name="uploader"/> holds against <paramref name="expected"/> and publishes it; on a
    /// mismatch nothing is stored. <paramref name="hashed"/> is the digest of every byte in the uploader's algorithm, or
    /// null when unknown (then the content is read back and hashed). <paramref name="inPlace"/>: the uploader's parts are
    /// at <paramref name="expected"/>'s content address already (a writer begun with the announced digest).
    /// </summary>
    internal async Task<Digest> CommitAsync(PartUploader uploader, Digest? hashed, Digest expected, CancellationToken cancellationToken, bool inPlace = false)
    {
        var length = uploader.Length;
        if (uploader.UploadId is null)
        {
            // Everything is in the local buffer: verify it there, then one PUT under the content address.
            Digest actual;
            if (hashed is { } h && h.Algorithm == expected.Algorithm)
            {
                actual = h;
            }
            else
            {
                var buffered = await uploader.OpenBufferAsync().ConfigureAwait(false);
                await using (buffered.ConfigureAwait(false))
                {
                    actual = await HashAsync(buffered, expected.Algorithm, cancellationToken).ConfigureAwait(false);
                }
            }

            if (actual != expected)
            {
                throw new DigestMismatchException(expected, actual, null);
            }

            await PublishAsync(expected, length, null, uploader.OpenBufferAsync, cancellationToken).ConfigureAwait(false);
            return expected;
        }

        var parts = await uploader.FinishPartsAsync(sendBuffer: true, cancellationToken).ConfigureAwait(false);
        if (inPlace)
        {
            return await CompleteInPlaceAsync(uploader, parts, hashed, expected, cancellationToken).ConfigureAwait(false);
        }

        await bucket.CompleteMultipartAsync(uploader.Key, uploader.UploadId, parts.Select(p => (p.Number, p.ETag)), cancellationToken).ConfigureAwait(false);
        try
        {
            Digest actual;
            if (hashed is { } h && h.Algorithm == expected.Algorithm)
            {
                actual = h;
            }
            else
            {
                var stored = await bucket.GetAsync(uploader.Key, 0, cancellationToken).ConfigureAwait(false) ?? throw new StoreUnavailableException($"the object store lost {uploader.Key} right after it was completed");
                await using (stored.ConfigureAwait(false))
                {
                    actual = await HashAsync(stored, expected.Algorithm, cancellationToken).ConfigureAwait(false);
                }
            }

            if (actual != expected)
            {
                throw new DigestMismatchException(expected, actual, null);
            }

            await PublishAsync(expected, length, uploader.Key, null, cancellationToken).ConfigureAwait(false);
            return expected;
        }
        catch
        {
            await bucket.DeleteAsync(uploader.Key, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Completes a multipart upload at its content address once the content proved to be <paramref name="expected"/>
    /// (on a mismatch it is aborted: nothing was ever visible), then writes the key. Content stored already is touched
    /// and the upload aborted rather than completed over the object a reader may be streaming. Two pushes of the same
    /// content completing at once both write the same bytes under the same key.
    /// </summary>
    private async Task<Digest> CompleteInPlaceAsync(PartUploader uploader, IReadOnlyList<UploadedPart> parts, Digest? hashed, Digest expected, CancellationToken cancellationToken)
    {
        var uploadId = uploader.UploadId!;
        var actual = hashed ?? throw new InvalidOperationException("an upload in place is hashed as it is written");
        if (actual != expected)
        {
            throw new DigestMismatchException(expected, actual, null);
        }

        if (await StatAsync(expected, cancellationToken).ConfigureAwait(false) is not null)
        {
            await bucket.AbortMultipartAsync(uploader.Key, uploadId, cancellationToken).ConfigureAwait(false);
            await TouchAsync(expected, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await bucket.CompleteMultipartAsync(uploader.Key, uploadId, parts.Select(p => (p.Number, p.ETag)), cancellationToken).ConfigureAwait(false);
            if (BeforeKeyWritten is { } hook)
            {
                await hook(expected, cancellationToken).ConfigureAwait(false);
            }

            await etcd.PutAsync(MetadataKey(expected), Format(uploader.Length, time.GetUtcNow()), 0, cancellationToken).ConfigureAwait(false);
        }

        await ForgetInFlightAsync(uploadId).ConfigureAwait(false);
        return expected;
    }

    /// <summary>Removes an in-place upload's in-flight key once it is completed or aborted (else the lease's end does).</summary>
    private async Task ForgetInFlightAsync(string uploadId)
    {
        try
        {
            await etcd.DeleteAsync(InFlightKey(uploadId), CancellationToken.None).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            // Attached to the replica's lease: gone when it expires.
        }
    }

    /// <summary>One blob on its way to the bucket; with <paramref name="announced"/>, its parts go to that content address.</summary>
    private sealed class Writer(S3BlobStore owner, string algorithm, PartUploader uploader, Digest? announced) : IBlobWriter
    {
        private bool _finished;

        public long Length => uploader.Length;

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => uploader.WriteAsync(data, cancellationToken);

        public Task<long> CopyFromAsync(Stream source, CancellationToken cancellationToken, long maxLength = long.MaxValue) =>
            uploader.CopyFromAsync(source, cancellationToken, maxLength);

        public Digest CurrentDigest()
        {
            var hash = uploader.Hash ?? throw new InvalidOperationException("the writer is finished");
            return Digest.FromHash(algorithm, hash.GetCurrentHash());
        }

        public Stream? OpenWritten() => null;

        public async Task<Digest> CommitAsync(Digest expected, CancellationToken cancellationToken)
        {
            if (_finished)
            {
                throw new InvalidOperationException("the writer is finished");
            }

            _finished = true;
            var hash = uploader.DetachHash()!;
            Digest hashed;
            using (hash)
            {
                hashed = Digest.FromHash(algorithm, hash.GetHashAndReset());
            }

            try
            {
                if (announced is { } digest && digest != expected)
                {
                    throw new ArgumentException($"a writer begun for {digest} cannot commit {expected}", nameof(expected));
                }

                return await owner.CommitAsync(uploader, hashed, expected, cancellationToken, inPlace: announced is not null).ConfigureAwait(false);
            }
            catch
            {
                await DropAsync().ConfigureAwait(false);
                throw;
            }
            finally
            {
                await uploader.DisposeAsync().ConfigureAwait(false);
            }
        }

        public async ValueTask AbortAsync()
        {
            if (!_finished)
            {
                _finished = true;
                await DropAsync().ConfigureAwait(false);
                await uploader.DisposeAsync().ConfigureAwait(false);
            }
        }

        private async Task DropAsync()
        {
            await ((Task)uploader.FinishPartsAsync(sendBuffer: false, CancellationToken.None)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (uploader.UploadId is { } uploadId)
            {
                try
                {
                    await owner.Bucket.AbortMultipartAsync(uploader.Key, uploadId, CancellationToken.None).ConfigureAwait(false);
                }
                catch (StoreUnavailableException)
                {
                    // Left for the next replica to open the store once this one's lease is gone (in place: for the sweep).
                    return;
                }

                if (announced is not null)
                {
                    await owner.ForgetInFlightAsync(uploadId).ConfigureAwait(false);
                }
            }
        }

        public ValueTask DisposeAsync() => AbortAsync();
    }
}
