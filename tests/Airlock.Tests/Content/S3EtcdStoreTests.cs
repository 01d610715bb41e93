using Airlock.Content;
using Airlock.Content.Etcd;
using Airlock.Content.S3;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>The engines of the scale-out store, started once for every test class that needs them.</summary>
[CollectionDefinition(Name)]
public sealed class CephEtcdCollection : ICollectionFixture<CephEtcd>
{
    public const string Name = "ceph-etcd";
}

/// <summary>
/// The S3 + etcd store passes the same store contract as the filesystem store, against a real radosgw and a real etcd:
/// each test has its own key prefix in the bucket and in etcd; every <c>OpenAsync</c> is another replica.
/// </summary>
[Collection(CephEtcdCollection.Name)]
public sealed class S3EtcdStoreTests(CephEtcd engines) : RegistryStoreContract
{
    private readonly string _prefix = "t-" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _buffers = Directory.CreateTempSubdirectory("airlock-s3-buffers-").FullName;

    internal static S3StoreOptions Options(CephEtcd engines, string prefix, string buffers)
    {
        var options = S3StoreOptions.Parse(engines.StorageUrl(prefix), new S3Credentials(CephEtcd.AccessKey, CephEtcd.SecretKey), buffers, out var error)
            ?? throw new InvalidOperationException(error);
        return options with
        {
            PartSize = 5 << 20,
            Metadata = new EtcdOptions { Endpoints = [engines.EtcdEndpoint], KeyPrefix = $"/{prefix}/", LeaseTtl = TimeSpan.FromSeconds(5) },
        };
    }

    protected override async Task<IRegistryStore> OpenStoreAsync(TimeProvider time, bool forCollection) =>
        await S3RegistryStore.OpenAsync(Options(engines, _prefix, _buffers), time, NullLogger.Instance, CancellationToken.None);

    protected override Task<int> CountIngestLeftoversAsync() => CountIngestLeftoversAsync(engines, _prefix, _buffers);

    /// <summary>Unfinished blob writes: multipart uploads and objects under the prefix's <c>ingest/</c>, part files under <paramref name="buffers"/>.</summary>
    internal static async Task<int> CountIngestLeftoversAsync(CephEtcd engines, string prefix, string buffers)
    {
        using var s3 = Client(engines);
        var uploads = await s3.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = "airlock-tests", Prefix = prefix + "/ingest/" });
        var objects = await s3.ListObjectsV2Async(new ListObjectsV2Request { BucketName = "airlock-tests", Prefix = prefix + "/ingest/" });
        var parts = Directory.EnumerateFiles(buffers, "*.part", SearchOption.AllDirectories).Count();
        return (uploads.MultipartUploads?.Count ?? 0) + (objects.S3Objects?.Count ?? 0) + parts;
    }

    protected override Task DeleteStorageAsync()
    {
        Directory.Delete(_buffers, recursive: true);
        return Task.CompletedTask;
    }

    internal static AmazonS3Client Client(CephEtcd engines) => new(
        new BasicAWSCredentials(CephEtcd.AccessKey, CephEtcd.SecretKey),
        new AmazonS3Config { ServiceURL = engines.S3Endpoint.ToString(), ForcePathStyle = true, AuthenticationRegion = "us-east-1" });
}
