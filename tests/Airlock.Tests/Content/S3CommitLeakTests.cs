using Airlock.Content;
using Airlock.Content.S3;
using Airlock.Oci;
using Airlock.Tests.Registry.Auth;
using Amazon.S3;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>
/// An S3 commit is two steps (the object under its content address, then its etcd key): one interrupted between them
/// leaves an object nobody sees. Garbage collection finds it and removes it once the grace period has passed.
/// The interruption is a gate in the commit, between the two steps, then the request's cancellation.
/// </summary>
[Collection(CephEtcdCollection.Name)]
public sealed class S3CommitLeakTests(CephEtcd engines) : IAsyncLifetime
{
    private readonly string _prefix = "leak-" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _buffers = Directory.CreateTempSubdirectory("airlock-s3-buffers-").FullName;
    private readonly ManualTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private S3RegistryStore _store = null!;

    public async Task InitializeAsync() =>
        _store = await S3RegistryStore.OpenAsync(S3EtcdStoreTests.Options(engines, _prefix, _buffers), _clock, NullLogger.Instance, CancellationToken.None);

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        Directory.Delete(_buffers, recursive: true);
    }

    [Theory]
    [InlineData(1000)] // one PUT under the content address
    [InlineData((5 << 20) + 1000)] // a multipart upload copied to the content address
    public async Task An_object_left_by_a_commit_interrupted_before_its_key_is_never_served_and_gc_sweeps_it_after_the_grace_period(int size)
    {
        var content = new byte[size];
        new Random(size).NextBytes(content);
        var digest = Digest.Sha256(content);
        var blobs = (S3BlobStore)_store.Blobs;
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        blobs.BeforeKeyWritten = async (_, ct) =>
        {
            reached.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        };

        using var request = new CancellationTokenSource();
        var commit = BlobStoreWrites.WriteAsync(blobs, new MemoryStream(content), digest, request.Token);
        await reached.Task;
        await request.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => commit);
        blobs.BeforeKeyWritten = null;

        // The object is there, but not the blob.
        Assert.True(await ObjectExistsAsync(digest));
        Assert.Null(await _store.Blobs.StatAsync(digest, CancellationToken.None));
        Assert.Null(await _store.Blobs.OpenReadAsync(digest, CancellationToken.None));
        Assert.DoesNotContain(digest, await _store.Blobs.ListAsync(CancellationToken.None).Select(b => b.Digest).ToListAsync());
        Assert.Contains(digest, await blobs.ListUnpublishedAsync(CancellationToken.None).Select(b => b.Digest).ToListAsync());

        // Within the grace period it stays (a commit may be between its steps right now).
        var young = await new GarbageCollector(_store, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        Assert.DoesNotContain(digest, young.DeletedBlobs);
        Assert.True(await ObjectExistsAsync(digest));

        _clock.Advance(TimeSpan.FromHours(2));
        var dryRun = await new GarbageCollector(_store, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: true, CancellationToken.None);
        Assert.Equal([digest], dryRun.DeletedBlobs);
        Assert.True(await ObjectExistsAsync(digest));

        var swept = await new GarbageCollector(_store, TimeSpan.FromHours(1), NullLogger.Instance).CollectAsync(dryRun: false, CancellationToken.None);
        Assert.Equal([digest], swept.DeletedBlobs);
        Assert.Equal(size, swept.DeletedBytes);
        Assert.False(await ObjectExistsAsync(digest));

        // The same content pushed again is stored and served whole.
        await BlobStoreWrites.WriteAsync(blobs, new MemoryStream(content), digest, CancellationToken.None);
        var stored = await _store.Blobs.OpenReadAsync(digest, CancellationToken.None);
        await using (stored!)
        {
            var back = new MemoryStream();
            await stored!.CopyToAsync(back);
            Assert.Equal(digest, Digest.Sha256(back.ToArray()));
        }
    }

    [Fact]
    public async Task A_published_blob_is_not_unpublished_and_a_commit_rewriting_a_leftover_is_kept()
    {
        var content = "published"u8.ToArray();
        var digest = Digest.Sha256(content);
        await BlobStoreWrites.WriteAsync(_store.Blobs, new MemoryStream(content), digest, CancellationToken.None);
        var blobs = (S3BlobStore)_store.Blobs;
        Assert.Empty(await blobs.ListUnpublishedAsync(CancellationToken.None).ToListAsync());

        // Under the sweep's re-check, a key written since the listing keeps the object whatever its age.
        Assert.False(await blobs.DeleteUnpublishedAsync(digest, DateTimeOffset.UtcNow.AddDays(1), CancellationToken.None));
        Assert.True(await ObjectExistsAsync(digest));
    }

    private async Task<bool> ObjectExistsAsync(Digest digest)
    {
        using var s3 = S3EtcdStoreTests.Client(engines);
        try
        {
            await s3.GetObjectMetadataAsync("airlock-tests", $"{_prefix}/blobs/{digest.Algorithm}/{digest.Encoded}");
            return true;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return false;
        }
    }
}
