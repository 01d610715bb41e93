using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Airlock.Content.Metadata;
using Airlock.Oci;
using Google.Protobuf;

namespace Airlock.Content.S3;

/// <summary>What a replica-shared upload session records in etcd: its bytes are S3 multipart parts plus a tail object.</summary>
internal sealed record S3UploadState(
    [property: JsonPropertyName("repository")] string Repository,
    [property: JsonPropertyName("uploadId")] string? UploadId,
    [property: JsonPropertyName("parts")] IReadOnlyList<S3UploadPart> Parts,
    [property: JsonPropertyName("length")] long Length,
    [property: JsonPropertyName("tail")] long TailLength,
    [property: JsonPropertyName("activity")] long ActivityTicks,
    [property: JsonPropertyName("started")] long StartedTicks);

internal sealed record S3UploadPart(
    [property: JsonPropertyName("n")] int Number,
    [property: JsonPropertyName("etag")] string ETag,
    [property: JsonPropertyName("size")] long Size);

[JsonSerializable(typeof(S3UploadState))]
internal sealed partial class S3JsonContext : JsonSerializerContext
{
}

/// <summary>
/// Chunked upload sessions any replica can continue: the state in etcd (<c>uploads/&lt;id&gt;</c>: repository, the S3
/// multipart upload and its parts, the length and the last activity), the bytes in the bucket as the parts of a
/// multipart upload at <c>uploads/&lt;id&gt;/data</c> (each a full part size, buffered on local disk first) and the tail
/// under a part size as the object <c>uploads/&lt;id&gt;/tail</c>, rewritten per request. A request holds the session
/// through <c>uploadlocks/&lt;id&gt;</c>, created only when absent and attached to the replica's etcd lease, so a replica
/// that dies releases it. The hash of a session's bytes is kept by the replica that appended last; a commit on another
/// replica reads the completed object back to hash it (.NET cannot persist a hash state).
/// </summary>
internal sealed class S3UploadSessionStore(S3BlobStore blobs, TimeProvider time, string bufferDirectory, int partSize) : IUploadSessionStore, IAsyncDisposable
{
    private const string StatePrefix = "uploads/";
    private const string LockPrefix = "uploadlocks/";

    /// <summary>Parts of a session that may be shorter than the part size (S3 allows 10,000 parts in all).</summary>
    private const int FlexiblePartLimit = 5000;
    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);

    private MetadataStore Etcd => blobs.Etcd;

    private TimeProvider Time => time;

    private S3BlobStore BlobStore => blobs;

    private S3Bucket Bucket => blobs.Bucket;

    public async ValueTask<string> CreateAsync(string repository, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("D");
        await WriteStateAsync(id, new S3UploadState(repository, null, [], 0, 0, time.GetUtcNow().UtcTicks, time.GetUtcNow().UtcTicks), cancellationToken).ConfigureAwait(false);
        return id;
    }

    public async ValueTask<UploadSessionInfo?> FindAsync(string id, CancellationToken cancellationToken) =>
        Guid.TryParseExact(id, "D", out _) && await ReadStateAsync(id, cancellationToken).ConfigureAwait(false) is { } found
            ? Describe(id, found.State)
            : null;

    public async ValueTask<IUploadSession?> OpenAsync(string id, CancellationToken cancellationToken)
    {
        if (!Guid.TryParseExact(id, "D", out _))
        {
            return null;
        }

        var slot = _slots.GetOrAdd(id, _ => new Slot());
        await slot.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var locked = false;
        try
        {
            locked = await LockAsync(id, cancellationToken).ConfigureAwait(false);
            if (!locked || await ReadStateAsync(id, cancellationToken).ConfigureAwait(false) is not { } found)
            {
                if (locked)
                {
                    await UnlockAsync(id).ConfigureAwait(false);
                }

                slot.Gate.Release();
                return null;
            }

            var state = found.State;
            IncrementalHash? hash = null;
            if (slot.Hash is { } cached && slot.HashedLength == state.Length)
            {
                hash = cached;
            }
            else
            {
                slot.Hash?.Dispose();
            }

            slot.Hash = null;
            var uploader = new PartUploader(Bucket, Bucket.Key(DataKey(id)), bufferDirectory, partSize, hash, state.UploadId, [.. state.Parts.Select(p => new UploadedPart(p.Number, p.ETag, p.Size))]);
            try
            {
                if (state.TailLength > 0)
                {
                    var tail = await Bucket.GetAsync(Bucket.Key(TailKey(id)), 0, cancellationToken).ConfigureAwait(false)
                        ?? throw new StoreUnavailableException($"the tail of upload {id} is missing from the object store");
                    await using (tail.ConfigureAwait(false))
                    {
                        await uploader.PrefillAsync(tail, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            catch
            {
                await uploader.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            return new Session(this, id, state, slot, uploader);
        }
        catch
        {
            if (locked)
            {
                await UnlockAsync(id).ConfigureAwait(false);
            }

            slot.Gate.Release();
            throw;
        }
    }

    public async ValueTask<bool> TryDeleteIdleAsync(string id, DateTimeOffset idleSince, CancellationToken cancellationToken)
    {
        if (!Guid.TryParseExact(id, "D", out _) || await ReadStateAsync(id, cancellationToken).ConfigureAwait(false) is not { } found
            || new DateTimeOffset(found.State.ActivityTicks, TimeSpan.Zero) > idleSince)
        {
            return false;
        }

        // Only if nobody holds it and nobody touched it since it was read.
        var deleted = await Etcd.TxnAsync(new Etcdserverpb.TxnRequest
        {
            Compare = { Etcd.Missing(LockPrefix + id), Etcd.Unchanged(StatePrefix + id, found.Revision) },
            Success = { Etcd.DeleteOp(StatePrefix + id) },
        }, cancellationToken).ConfigureAwait(false);
        if (!deleted.Succeeded)
        {
            return false;
        }

        await DropBytesAsync(id, found.State).ConfigureAwait(false);
        return true;
    }

    public async IAsyncEnumerable<UploadSessionInfo> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var kv in Etcd.ScanAsync(StatePrefix, keysOnly: false, cancellationToken).ConfigureAwait(false))
        {
            var id = Etcd.Relative(kv.Key)[StatePrefix.Length..];
            if (Guid.TryParseExact(id, "D", out _) && Parse(kv.Value) is { } state)
            {
                yield return Describe(id, state);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        foreach (var slot in _slots.Values)
        {
            slot.Hash?.Dispose();
            slot.Hash = null;
        }

        _slots.Clear();
        return ValueTask.CompletedTask;
    }

    private static string DataKey(string id) => $"uploads/{id}/data";

    private static string TailKey(string id) => $"uploads/{id}/tail";

    private static UploadSessionInfo Describe(string id, S3UploadState state) =>
        new(id, state.Repository, state.Length, new DateTimeOffset(state.ActivityTicks, TimeSpan.Zero), new DateTimeOffset(state.StartedTicks, TimeSpan.Zero));

    private static S3UploadState? Parse(ByteString value)
    {
        try
        {
            return JsonSerializer.Deserialize(value.Span, S3JsonContext.Default.S3UploadState);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task<(S3UploadState State, long Revision)?> ReadStateAsync(string id, CancellationToken cancellationToken) =>
        await Etcd.GetAsync(StatePrefix + id, cancellationToken).ConfigureAwait(false) is { } kv && Parse(kv.Value) is { } state
            ? (state, kv.ModRevision)
            : null;

    private Task WriteStateAsync(string id, S3UploadState state, CancellationToken cancellationToken) =>
        Etcd.PutAsync(StatePrefix + id, ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(state, S3JsonContext.Default.S3UploadState)), 0, cancellationToken);

    /// <summary>Takes the session's lock key (waiting while another request, on any replica, holds it); false when the session is gone.</summary>
    private async Task<bool> LockAsync(string id, CancellationToken cancellationToken)
    {
        var wait = 2;
        while (true)
        {
            var lease = await Etcd.LeaseAsync(cancellationToken).ConfigureAwait(false);
            var taken = await Etcd.TxnAsync(new Etcdserverpb.TxnRequest
            {
                Compare = { Etcd.Missing(LockPrefix + id), Etcd.Exists(StatePrefix + id) },
                Success = { Etcd.PutOp(LockPrefix + id, ByteString.Empty, lease) },
                Failure = { Etcd.GetOp(StatePrefix + id) },
            }, cancellationToken).ConfigureAwait(false);
            if (taken.Succeeded)
            {
                return true;
            }

            if (taken.Responses[0].ResponseRange.Kvs.Count == 0)
            {
                return false;
            }

            await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            wait = Math.Min(wait * 2, 50);
        }
    }

    private async Task UnlockAsync(string id)
    {
        try
        {
            await Etcd.DeleteAsync(LockPrefix + id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            // Attached to the replica's lease: released when it expires.
        }
    }

    private async Task DropBytesAsync(string id, S3UploadState state)
    {
        try
        {
            if (state.UploadId is { } uploadId)
            {
                await Bucket.AbortMultipartAsync(Bucket.Key(DataKey(id)), uploadId, CancellationToken.None).ConfigureAwait(false);
            }

            await Bucket.DeleteAsync(Bucket.Key(TailKey(id)), CancellationToken.None).ConfigureAwait(false);
        }
        catch (StoreUnavailableException)
        {
            // Garbage in the bucket only: nothing refers to it any more.
        }
    }

    private async Task EndAsync(string id, S3UploadState state, bool dropBytes)
    {
        if (_slots.TryRemove(id, out var slot))
        {
            slot.Hash?.Dispose();
            slot.Hash = null;
        }

        await Etcd.DeleteAsync(StatePrefix + id, CancellationToken.None).ConfigureAwait(false);
        if (dropBytes)
        {
            await DropBytesAsync(id, state).ConfigureAwait(false);
        }
        else
        {
            await Bucket.DeleteAsync(Bucket.Key(TailKey(id)), CancellationToken.None).ConfigureAwait(false);
        }
    }

    private sealed class Slot
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>The hash of the session's first <see cref="HashedLength"/> bytes, as this replica last left it.</summary>
        public IncrementalHash? Hash { get; set; }

        public long HashedLength { get; set; }
    }

    /// <summary>One request's hold on a session.</summary>
    private sealed class Session(S3UploadSessionStore owner, string id, S3UploadState state, Slot slot, PartUploader uploader) : IUploadSession
    {
        private S3UploadState _state = state;
        private bool _ended;
        private bool _broken;

        public string Id => id;

        public string Repository => _state.Repository;

        public long Length => _state.Length;

        public async Task<long> AppendAsync(Stream body, CancellationToken cancellationToken)
        {
            if (_broken || _ended)
            {
                throw new InvalidOperationException("the session's request failed or ended; open it again");
            }

            try
            {
                var appended = await uploader.CopyFromAsync(body, cancellationToken).ConfigureAwait(false);

                // What is left is sent as a part of its own when S3 takes it as one (parts may differ in size): a client's
                // chunks of 5 MiB or more then leave no tail object, which would be written here and read back by the next
                // request (two more transfers of up to a part size per chunk: chunked pushes took 8x radosgw's own PUT).
                // The first FlexiblePartLimit parts only, so a blob of 5 MiB chunks can still grow to
                // FlexiblePartLimit x 5 MiB + (10,000 - FlexiblePartLimit) x the part size.
                var sendTail = uploader.Buffered >= PartUploader.MinimumPartSize && uploader.PartCount < FlexiblePartLimit;
                var parts = await uploader.FinishPartsAsync(sendTail, cancellationToken).ConfigureAwait(false);
                if (uploader.Buffered > 0)
                {
                    var tail = await uploader.OpenBufferAsync().ConfigureAwait(false);
                    await using (tail.ConfigureAwait(false))
                    {
                        await owner.Bucket.PutAsync(owner.Bucket.Key(TailKey(id)), tail, cancellationToken).ConfigureAwait(false);
                    }
                }

                var next = _state with
                {
                    UploadId = uploader.UploadId,
                    Parts = [.. parts.Select(p => new S3UploadPart(p.Number, p.ETag, p.Size))],
                    Length = uploader.Length,
                    TailLength = uploader.Buffered,
                    ActivityTicks = owner.Time.GetUtcNow().UtcTicks,
                };
                await owner.WriteStateAsync(id, next, cancellationToken).ConfigureAwait(false);
                _state = next;
                return appended;
            }
            catch
            {
                // What is on storage is the state etcd still holds; the next request starts from there.
                _broken = true;
                throw;
            }
        }

        public async Task<Digest> CommitAsync(Digest expected, CancellationToken cancellationToken)
        {
            if (_broken || _ended)
            {
                throw new InvalidOperationException("the session's request failed or ended; open it again");
            }

            _ended = true;
            Digest? hashed = null;
            if (uploader.DetachHash() is { } hash)
            {
                using (hash)
                {
                    hashed = Digest.FromHash(Digest.Sha256Algorithm, hash.GetHashAndReset());
                }
            }

            var completed = false;
            try
            {
                var digest = await owner.BlobStore.CommitAsync(uploader, hashed, expected, cancellationToken).ConfigureAwait(false);
                completed = true;
                return digest;
            }
            finally
            {
                // The multipart upload was completed (and its object removed) or must be aborted.
                await owner.EndAsync(id, _state, dropBytes: !completed).ConfigureAwait(false);
            }
        }

        public async ValueTask CancelAsync()
        {
            _ended = true;
            await owner.EndAsync(id, _state, dropBytes: true).ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (!_ended && !_broken)
                {
                    // Keep the hash for this replica's next request on the session.
                    slot.Hash = uploader.DetachHash();
                    slot.HashedLength = _state.Length;
                    if (_state.ActivityTicks != owner.Time.GetUtcNow().UtcTicks)
                    {
                        var stamped = _state with { ActivityTicks = owner.Time.GetUtcNow().UtcTicks };
                        await owner.WriteStateAsync(id, stamped, CancellationToken.None).ConfigureAwait(false);
                    }
                }
            }
            catch (StoreUnavailableException)
            {
                // The stamp only delays expiry.
            }
            finally
            {
                await uploader.DisposeAsync().ConfigureAwait(false);
                await owner.UnlockAsync(id).ConfigureAwait(false);

                slot.Gate.Release();
            }
        }
    }
}
