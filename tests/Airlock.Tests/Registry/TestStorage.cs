using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Content.Metadata;
using Airlock.Content.S3;
using Airlock.Registry;
using Airlock.Tests.Content;
using Amazon.S3.Model;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Registry;

/// <summary>
/// The store a registry test runs against: the filesystem store under the data directory (the default), or blobs in
/// the run's radosgw and metadata in its etcd (<see cref="S3"/>), so one test class runs every HTTP-level case on both.
/// A registry's bucket prefix and etcd key prefix are named after its data directory: a restart on the same directory
/// finds the same store, and tests running at the same time never see each other's.
/// </summary>
internal abstract class TestStorage
{
    public static readonly TestStorage FileSystem = new FileSystemStorage();

    /// <summary>Whether blobs are files on this machine (sendfile and the other local paths apply).</summary>
    public abstract bool LocalFiles { get; }

    public static TestStorage S3(CephEtcd engines) => new S3EtcdStorage(engines, localMetadata: false);

    /// <summary>Blobs in the run's radosgw, metadata in the registry's data directory (a single replica, no etcd).</summary>
    public static TestStorage S3Local(CephEtcd engines) => new S3EtcdStorage(engines, localMetadata: true);

    public abstract RegistryServerOptions Configure(RegistryServerOptions options);

    /// <summary>Blobs stored, counted where the store keeps them (files, or objects in the bucket: a leaked object counts).</summary>
    public abstract Task<int> CountStoredBlobsAsync(TestRegistry registry);

    /// <summary>What upload sessions left behind (session folders, or session keys, multipart uploads and part buffers).</summary>
    public abstract Task<int> CountUploadLeftoversAsync(TestRegistry registry);

    /// <summary>Opens the registry's store apart from it, as <c>airlock registry gc</c> does beside a running registry.</summary>
    public abstract Task<IRegistryStore> OpenForCollectionAsync(TestRegistry registry);

    /// <summary>Everything the store recorded about repositories (files, or etcd keys and values), to assert nothing changed.</summary>
    public abstract Task<string[]> RepositoryRecordsAsync(TestRegistry registry);

    private sealed class FileSystemStorage : TestStorage
    {
        public override bool LocalFiles => true;

        public override RegistryServerOptions Configure(RegistryServerOptions options) => options;

        public override Task<IRegistryStore> OpenForCollectionAsync(TestRegistry registry) =>
            Task.FromResult<IRegistryStore>(FileSystemRegistryStore.OpenForCollection(registry.DataDirectory, TimeProvider.System, NullLogger.Instance));

        public override Task<int> CountStoredBlobsAsync(TestRegistry registry) =>
            Task.FromResult(Directory.Exists(registry.BlobsDirectory) ? Directory.EnumerateFiles(registry.BlobsDirectory, "*", SearchOption.AllDirectories).Count() : 0);

        public override Task<int> CountUploadLeftoversAsync(TestRegistry registry)
        {
            var uploads = Path.Combine(registry.DataDirectory, "registry", "uploads");
            return Task.FromResult(Directory.Exists(uploads) ? Directory.EnumerateFileSystemEntries(uploads).Count() : 0);
        }

        public override Task<string[]> RepositoryRecordsAsync(TestRegistry registry)
        {
            var root = Path.Combine(registry.DataDirectory, "registry", "repositories");
            return Task.FromResult(Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
                .Select(p => Path.GetRelativePath(root, p)).Order(StringComparer.Ordinal).ToArray());
        }
    }

    private sealed class S3EtcdStorage(CephEtcd engines, bool localMetadata) : TestStorage
    {
        private const string Bucket = "airlock-tests";

        public override bool LocalFiles => false;

        public override RegistryServerOptions Configure(RegistryServerOptions options) => options with
        {
            SharedStore = localMetadata
                ? S3LocalStoreTests.Options(engines, Prefix(options.DataDirectory), options.DataDirectory)
                : S3EtcdStoreTests.Options(engines, Prefix(options.DataDirectory), Path.Combine(options.DataDirectory, "s3-buffers")),
        };

        public override async Task<IRegistryStore> OpenForCollectionAsync(TestRegistry registry) =>
            await S3RegistryStore.OpenAsync(Configure(new RegistryServerOptions { DataDirectory = registry.DataDirectory }).SharedStore!, TimeProvider.System, NullLogger.Instance, CancellationToken.None, forCollection: true);

        public override async Task<int> CountStoredBlobsAsync(TestRegistry registry) =>
            (await ListObjectsAsync(Prefix(registry.DataDirectory) + "/blobs/")).Count;

        public override async Task<int> CountUploadLeftoversAsync(TestRegistry registry)
        {
            var prefix = Prefix(registry.DataDirectory);
            using var s3 = S3EtcdStoreTests.Client(engines);
            var multipart = await s3.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = Bucket, Prefix = prefix + "/" });
            var objects = await ListObjectsAsync(prefix + "/ingest/");
            var buffers = Path.Combine(registry.DataDirectory, "s3-buffers");
            var parts = Directory.Exists(buffers) ? Directory.EnumerateFiles(buffers, "*.part", SearchOption.AllDirectories).Count() : 0;
            var sessions = (await MetadataAsync(registry, "uploads/")).Length;
            return (multipart.MultipartUploads?.Count ?? 0) + objects.Count + parts + sessions;
        }

        public override async Task<string[]> RepositoryRecordsAsync(TestRegistry registry)
        {
            return [.. await MetadataAsync(registry, "repos/"), .. await MetadataAsync(registry, "catalog/")];
        }

        private static async Task<string[]> LocalAsync(string data, string under)
        {
            await using var metadata = LocalMetadata.Open(Path.Combine(data, "s3-metadata"), NullLogger.Instance);
            return [.. await metadata.ScanAsync(under, keysOnly: false, CancellationToken.None).Select(kv => $"{metadata.Relative(kv.Key)} = {kv.Value.ToStringUtf8()}").ToListAsync()];
        }

        private static string Prefix(string dataDirectory) => "reg-" + Path.GetFileName(dataDirectory.TrimEnd('/'));

        private async Task<List<string>> ListObjectsAsync(string prefix)
        {
            using var s3 = S3EtcdStoreTests.Client(engines);
            var keys = new List<string>();
            var request = new ListObjectsV2Request { BucketName = Bucket, Prefix = prefix };
            ListObjectsV2Response response;
            do
            {
                response = await s3.ListObjectsV2Async(request);
                keys.AddRange((response.S3Objects ?? []).Select(o => o.Key));
                request.ContinuationToken = response.NextContinuationToken;
            }
            while (response.IsTruncated == true);
            return keys;
        }

        /// <summary>
        /// Keys and values under the registry's etcd prefix, read with etcdctl (not through the store under test), or with
        /// local metadata the keys the registry's own instance holds (an instance opened in its process joins it).
        /// </summary>
        private async Task<string[]> MetadataAsync(TestRegistry registry, string under)
        {
            if (localMetadata)
            {
                return await LocalAsync(registry.DataDirectory, under);
            }

            var prefix = Prefix(registry.DataDirectory);
            var result = await Tool.RunAsync("etcdctl", ["--endpoints", engines.EtcdEndpoint, "get", "--prefix", $"/{prefix}/{under}"], TimeSpan.FromSeconds(30));
            Assert.True(result.ExitCode == 0, $"etcdctl failed: {result.Stderr}");
            var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return [.. lines.Chunk(2).Select(kv => string.Join(" = ", kv))];
        }
    }
}
