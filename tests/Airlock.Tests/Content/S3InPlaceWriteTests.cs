using System.Security.Cryptography;
using Airlock.Content;
using Airlock.Content.S3;
using Airlock.Oci;
using Airlock.Tests.Registry.Auth;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>
/// A blob whose digest is announced before its bytes (a monolithic push) is uploaded as a multipart upload straight to
/// its content address and completed there only once its hash matched: no copy at the commit (what bench/s3-bench.sh's
/// 512 MiB push measures), and still nothing visible before the digest is verified. Against the real radosgw and etcd.
/// </summary>
[Collection(CephEtcdCollection.Name)]
public sealed class S3InPlaceWriteTests(CephEtcd engines) : IAsyncLifetime
{
    private const string Bucket = "airlock-tests";
    private readonly string _prefix = "inplace-" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _buffers = Directory.CreateTempSubdirectory("airlock-s3-inplace-").FullName;
    private readonly ManualTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private S3RegistryStore _store = null!;

    private S3BlobStore Blobs => (S3BlobStore)_store.Blobs;

    public async Task InitializeAsync() => _store = await OpenAsync();

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_buffers, recursive: true);
    }

    private Task<S3RegistryStore> OpenAsync() =>
        S3RegistryStore.OpenAsync(S3EtcdStoreTests.Options(engines, _prefix, _buffers), _clock, NullLogger.Instance, CancellationToken.None);

    [Fact]
    public async Task An_announced_blob_is_uploaded_to_its_content_address_and_becomes_an_object_only_at_its_verified_commit()
    {
        var none = CancellationToken.None;
        var content = RandomNumberGenerator.GetBytes((12 << 20) + 1000); // two 5 MiB parts sent while writing, the rest at the commit
        var digest = Digest.Sha256(content);
        await using var writer = await Blobs.BeginWriteAsync(digest, none);
        await writer.WriteAsync(content, none);

        // In flight: a multipart upload at the content address, no object anywhere, nothing to sweep even past the grace period.
        Assert.Equal([ObjectKey(digest)], await MultipartKeysAsync());
        Assert.Empty(await ObjectKeysAsync());
        Assert.Null(await _store.Blobs.StatAsync(digest, none));
        _clock.Advance(TimeSpan.FromHours(2));
        var collected = await new GarbageCollector(_store, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: false, none);
        Assert.DoesNotContain(digest, collected.DeletedBlobs);
        Assert.Equal([ObjectKey(digest)], await MultipartKeysAsync());

        Assert.Equal(digest, await writer.CommitAsync(digest, none));
        Assert.Empty(await MultipartKeysAsync());
        Assert.Equal([ObjectKey(digest)], await ObjectKeysAsync()); // no ingest object was written and copied
        Assert.Equal(content.Length, (await _store.Blobs.StatAsync(digest, none))?.Size);
        Assert.Equal(content, await ReadAsync(digest));
        Assert.Empty(await Blobs.ListUnpublishedAsync(none).ToListAsync());
    }

    [Fact]
    public async Task An_announced_blob_whose_bytes_do_not_match_leaves_nothing_in_the_bucket()
    {
        var none = CancellationToken.None;
        var content = RandomNumberGenerator.GetBytes((11 << 20) + 7);
        var announced = Digest.Sha256("something else"u8.ToArray());
        await using var writer = await Blobs.BeginWriteAsync(announced, none);
        await writer.WriteAsync(content, none);
        Assert.Equal([ObjectKey(announced)], await MultipartKeysAsync());

        var mismatch = await Assert.ThrowsAsync<DigestMismatchException>(() => writer.CommitAsync(announced, none));
        Assert.Contains(Digest.Sha256(content).ToString(), mismatch.Message);
        Assert.Empty(await MultipartKeysAsync());
        Assert.Empty(await ObjectKeysAsync());
        Assert.Null(await _store.Blobs.StatAsync(announced, none));
        Assert.Empty(await Blobs.ListUnpublishedAsync(none).ToListAsync());
    }

    [Fact]
    public async Task A_multipart_upload_a_dead_replica_left_at_a_content_address_is_swept_by_gc_after_the_grace_period()
    {
        var none = CancellationToken.None;
        var content = RandomNumberGenerator.GetBytes(11 << 20);
        var digest = Digest.Sha256(content);

        // Another replica starts the push and dies (its etcd lease ends) without committing or aborting it.
        var dying = await OpenAsync();
        var writer = await dying.Blobs.BeginWriteAsync(digest, none);
        await writer.WriteAsync(content, none);
        await dying.DisposeAsync();
        Assert.Equal([ObjectKey(digest)], await MultipartKeysAsync());

        Assert.Null(await _store.Blobs.StatAsync(digest, none));
        Assert.Contains(digest, await Blobs.ListUnpublishedAsync(none).Select(b => b.Digest).ToListAsync());
        var young = await new GarbageCollector(_store, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: false, none);
        Assert.DoesNotContain(digest, young.DeletedBlobs);
        Assert.Equal([ObjectKey(digest)], await MultipartKeysAsync());

        _clock.Advance(TimeSpan.FromHours(2));
        var swept = await new GarbageCollector(_store, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: false, none);
        Assert.Equal([digest], swept.DeletedBlobs);
        Assert.Empty(await MultipartKeysAsync());
        Assert.Empty(await ObjectKeysAsync());

        // The same content pushed again is stored whole.
        await BlobStoreWrites.WriteAsync(_store.Blobs, new MemoryStream(content), digest, none);
        Assert.Equal(content, await ReadAsync(digest));
    }

    [Fact]
    public async Task Two_pushes_of_the_same_blob_in_flight_at_once_both_succeed_and_leave_one_whole_object()
    {
        var none = CancellationToken.None;
        var content = RandomNumberGenerator.GetBytes((10 << 20) + 3);
        var digest = Digest.Sha256(content);
        await using var other = await OpenAsync(); // the second push on another replica
        await using var first = await Blobs.BeginWriteAsync(digest, none);
        await using var second = await other.Blobs.BeginWriteAsync(digest, none);
        await first.WriteAsync(content.AsMemory(0, 6 << 20), none);
        await second.WriteAsync(content, none);
        await first.WriteAsync(content.AsMemory(6 << 20), none);
        Assert.Equal([ObjectKey(digest), ObjectKey(digest)], await MultipartKeysAsync());

        Assert.Equal(digest, await second.CommitAsync(digest, none));
        Assert.Equal(content, await ReadAsync(digest));

        // The later commit finds the blob stored: its own upload is dropped, the blob touched, never completed over it.
        var stored = (await _store.Blobs.StatAsync(digest, none))!.Value;
        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(digest, await first.CommitAsync(digest, none));
        Assert.Empty(await MultipartKeysAsync());
        Assert.Equal([ObjectKey(digest)], await ObjectKeysAsync());
        Assert.True((await _store.Blobs.StatAsync(digest, none))!.Value.LastReferenced > stored.LastReferenced);
        Assert.Equal(content, await ReadAsync(digest));
        Assert.Empty(await Blobs.ListUnpublishedAsync(none).ToListAsync());
    }

    private string ObjectKey(Digest digest) => $"{_prefix}/blobs/{digest.Algorithm}/{digest.Encoded}";

    private async Task<byte[]> ReadAsync(Digest digest)
    {
        await using var stored = (await _store.Blobs.OpenReadAsync(digest, CancellationToken.None))!;
        var read = new MemoryStream();
        await stored.CopyToAsync(read);
        return read.ToArray();
    }

    private async Task<string[]> MultipartKeysAsync()
    {
        using var s3 = S3EtcdStoreTests.Client(engines);
        var uploads = await s3.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = Bucket, Prefix = _prefix + "/" });
        return [.. (uploads.MultipartUploads ?? []).Select(u => u.Key)];
    }

    private async Task<string[]> ObjectKeysAsync()
    {
        using var s3 = S3EtcdStoreTests.Client(engines);
        var objects = await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Bucket, Prefix = _prefix + "/" });
        return [.. (objects.S3Objects ?? []).Select(o => o.Key)];
    }
}
