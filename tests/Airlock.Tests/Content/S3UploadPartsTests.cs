using System.Security.Cryptography;
using Airlock.Content.S3;
using Airlock.Oci;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>
/// How a chunked push's bytes reach the bucket (what bench/s3-bench.sh's chunked push measures), against the real
/// radosgw and etcd: chunks S3 takes as parts go up as parts, with no tail object to rewrite and read back per request.
/// </summary>
[Collection(CephEtcdCollection.Name)]
public sealed class S3UploadPartsTests(CephEtcd engines) : IDisposable
{
    private const int PartSize = 8 << 20;
    private readonly string _prefix = "p-" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _buffers = Directory.CreateTempSubdirectory("airlock-s3-parts-").FullName;

    [Fact]
    public async Task ChunksOfAtLeastFiveMiBBecomePartsWithoutATailObjectAndTheBlobIsWhole()
    {
        var none = CancellationToken.None;
        var content = RandomNumberGenerator.GetBytes((6 << 20) + (6 << 20) + (1 << 20));
        var options = S3EtcdStoreTests.Options(engines, _prefix, _buffers) with { PartSize = PartSize };
        await using var store = await S3RegistryStore.OpenAsync(options, TimeProvider.System, NullLogger.Instance, none);
        using var s3 = S3EtcdStoreTests.Client(engines);
        var id = await store.Uploads.CreateAsync("app", none);

        // Two 6 MiB chunks (under the 8 MiB part size, over S3's 5 MiB minimum): each is one part, nothing else is stored.
        foreach (var (from, to) in new[] { (0, 6 << 20), (6 << 20, 12 << 20) })
        {
            await using var session = (await store.Uploads.OpenAsync(id, none))!;
            await session.AppendAsync(new MemoryStream(content[from..to]), none);
            Assert.Empty(await ObjectsAsync(s3));
        }

        var upload = Assert.Single((await s3.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = "airlock-tests", Prefix = $"{_prefix}/uploads/{id}/" })).MultipartUploads);
        var parts = await s3.ListPartsAsync(new ListPartsRequest { BucketName = "airlock-tests", Key = upload.Key, UploadId = upload.UploadId });
        Assert.Equal([6L << 20, 6L << 20], parts.Parts.Select(p => (long)p.Size!));

        // A 1 MiB chunk cannot be a part but the last: it waits in the tail object, where another replica finds it.
        await using (var session = (await store.Uploads.OpenAsync(id, none))!)
        {
            await session.AppendAsync(new MemoryStream(content[(12 << 20)..]), none);
        }

        Assert.Equal([$"{_prefix}/uploads/{id}/tail"], await ObjectsAsync(s3));
        await using (var other = await S3RegistryStore.OpenAsync(options, TimeProvider.System, NullLogger.Instance, none))
        {
            await using var session = (await other.Uploads.OpenAsync(id, none))!;
            Assert.Equal(content.Length, session.Length);
            Assert.Equal(Digest.Sha256(content), await session.CommitAsync(Digest.Sha256(content), none));
        }

        await using var stored = (await store.Blobs.OpenReadAsync(Digest.Sha256(content), none))!;
        var read = new MemoryStream();
        await stored.CopyToAsync(read);
        Assert.Equal(content, read.ToArray());
    }

    private async Task<string[]> ObjectsAsync(Amazon.S3.AmazonS3Client s3) =>
        [.. ((await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "airlock-tests", Prefix = _prefix + "/uploads/" })).S3Objects ?? []).Select(o => o.Key)];

    public void Dispose() => Directory.Delete(_buffers, recursive: true);
}
