using Airlock.Content;
using Airlock.Content.S3;
using Airlock.Oci;
using Airlock.Tests.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Content;

/// <summary>
/// The S3 store without etcd (a single replica: its metadata in the data directory) passes the same store contract as
/// the filesystem store and the S3 + etcd store, against a real radosgw; instances opened together share the metadata
/// as replicas share etcd, and a store reopened after every instance closed is a restart (the journal replayed).
/// </summary>
[Collection(CephEtcdCollection.Name)]
public sealed class S3LocalStoreTests(CephEtcd engines) : RegistryStoreContract
{
    private readonly string _prefix = "l-" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _data = Directory.CreateTempSubdirectory("airlock-s3-local-").FullName;

    private static CancellationToken None => CancellationToken.None;

    internal static S3StoreOptions Options(CephEtcd engines, string prefix, string data)
    {
        var options = S3StoreOptions.Parse(engines.StorageUrl(prefix), new S3Credentials(CephEtcd.AccessKey, CephEtcd.SecretKey), Path.Combine(data, "s3-buffers"), out var error)
            ?? throw new InvalidOperationException(error);
        return options with { PartSize = 5 << 20, MetadataDirectory = Path.Combine(data, "s3-metadata") };
    }

    protected override async Task<IRegistryStore> OpenStoreAsync(TimeProvider time, bool forCollection) =>
        await S3RegistryStore.OpenAsync(Options(engines, _prefix, _data), time, NullLogger.Instance, None, forCollection);

    protected override Task<int> CountIngestLeftoversAsync() => S3EtcdStoreTests.CountIngestLeftoversAsync(engines, _prefix, _data);

    protected override Task DeleteStorageAsync()
    {
        Directory.Delete(_data, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Pushed_images_are_pulled_and_collected_after_a_restart()
    {
        var image = ScaleOutRegistryTests.Image("kept across the restart");
        var orphan = ScaleOutRegistryTests.Image("never tagged").Layer;
        foreach (var blob in new[] { image.Config, image.Layer, image.Manifest, orphan })
        {
            await Store.Blobs.WriteAsync(new MemoryStream(blob), Digest.Sha256(blob), None);
            await Store.Repositories.LinkBlobAsync("team/app", Digest.Sha256(blob), None);
        }

        var manifest = Digest.Sha256(image.Manifest);
        await Store.Repositories.PutManifestRevisionAsync("team/app", manifest, MediaTypes.OciManifest, None);
        await Store.Repositories.SetTagAsync("team/app", "v1", manifest, None);
        var id = await Store.Uploads.CreateAsync("team/app", None);
        await using (var upload = (await Store.Uploads.OpenAsync(id, None))!)
        {
            await upload.AppendAsync(new MemoryStream("half an upload"u8.ToArray()), None);
        }

        // Every instance closed: the next open starts from the data directory's journal alone.
        await CrashAsync(Store);
        var restarted = await OpenAsync();
        Assert.Equal(manifest, await restarted.Repositories.ResolveTagAsync("team/app", "v1", None));
        Assert.Equal(MediaTypes.OciManifest, await restarted.Repositories.ManifestMediaTypeAsync("team/app", manifest, None));
        Assert.Equal(image.Layer, await restarted.Blobs.ReadSmallAsync(Digest.Sha256(image.Layer), 1 << 20, None));
        Assert.Equal(["team/app"], (await restarted.Repositories.ListRepositoriesAsync(null, 10, None)).Names);
        Assert.Equal(14, (await restarted.Uploads.FindAsync(id, None))!.Length);
        await using (var upload = (await restarted.Uploads.OpenAsync(id, None))!)
        {
            Assert.Equal(14, upload.Length);
        }

        // Collected as `airlock registry gc` does with the registry stopped: alone, so the grace period is taken as given.
        await CrashAsync(restarted);
        var collector = await OpenAsync(forCollection: true);
        Assert.True(collector.Exclusive);
        var collected = await new GarbageCollector(collector, TimeSpan.Zero, NullLogger.Instance).CollectAsync(dryRun: false, None);
        Assert.Equal([Digest.Sha256(orphan)], collected.DeletedBlobs);
        await CrashAsync(collector);
        var again = await OpenAsync();
        Assert.Null(await again.Blobs.StatAsync(Digest.Sha256(orphan), None));
        Assert.NotNull(await again.Blobs.StatAsync(Digest.Sha256(image.Config), None));
        Assert.Equal(manifest, await again.Repositories.ResolveTagAsync("team/app", "v1", None));
        Assert.False((await OpenAsync(forCollection: true)).Exclusive);
    }

    [Fact]
    public async Task Metadata_recorded_for_one_bucket_prefix_are_refused_to_another_once_they_hold_anything()
    {
        // Nothing but the record of the bucket yet (as after a first start with a mistyped --storage): another takes over.
        var other = Options(engines, _prefix + "-other", _data);
        await (await S3RegistryStore.OpenAsync(other, TimeProvider.System, NullLogger.Instance, None)).DisposeAsync();
        var back = await OpenAsync();

        await back.Repositories.SetTagAsync("team/app", "v1", Digest.Sha256("x"u8.ToArray()), None);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => S3RegistryStore.OpenAsync(other, TimeProvider.System, NullLogger.Instance, None));
        Assert.Contains($"holds the metadata of s3://airlock-tests/{_prefix}/, not of s3://airlock-tests/{_prefix}-other/", error.Message, StringComparison.Ordinal);
        Assert.NotNull(await (await OpenAsync()).Repositories.ResolveTagAsync("team/app", "v1", None));
    }
}
