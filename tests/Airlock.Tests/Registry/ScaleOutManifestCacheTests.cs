using System.Net;
using System.Net.Http.Headers;
using Airlock.Oci;
using Airlock.Tests.Content;

namespace Airlock.Tests.Registry;

/// <summary>
/// A replica on the S3 + etcd store keeps the manifests it served with the repository's change version (the etcd
/// revision of the repository's catalog key, which every write to the repository rewrites): a manifest GET is then one
/// etcd read instead of three (tag, revision, content), and any write, on any replica, makes the entry stale at once.
/// </summary>
[Collection(CephEtcdCollection.Name)]
public sealed class ScaleOutManifestCacheTests(CephEtcd engines) : IAsyncLifetime
{
    private readonly string _prefix = "m-" + Guid.NewGuid().ToString("N")[..12];
    private readonly List<(TestRegistry Registry, string Data)> _replicas = [];

    private HttpClient First => _replicas[0].Registry.Client;

    private HttpClient Second => _replicas[1].Registry.Client;

    public async Task InitializeAsync()
    {
        for (var i = 0; i < 2; i++)
        {
            var data = Directory.CreateTempSubdirectory("airlock-replica-").FullName;
            var shared = S3EtcdStoreTests.Options(engines, _prefix, Path.Combine(data, "s3-buffers"));
            _replicas.Add((await TestRegistry.StartAsync(options => options with { SharedStore = shared }, data), data));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var (registry, data) in _replicas)
        {
            await registry.DisposeAsync();
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task A_served_manifest_is_served_again_while_the_repository_is_unchanged_and_never_after_a_write_on_any_replica()
    {
        var image = ScaleOutRegistryTests.Image("cached by the first replica");
        await ScaleOutRegistryTests.PushImageAsync(Second, "team/app", "v1", image);
        Assert.Equal(image.Manifest, await GetManifestAsync(First, "team/app", "v1"));

        // The tag key removed behind the registries' back (no write to the repository's catalog key): the first replica
        // does not read the tag again, the second, which never served it, does.
        var removed = await Tool.RunAsync("etcdctl", ["--endpoints", engines.EtcdEndpoint, "del", $"/{_prefix}/repos/team/app/_tags/v1"]);
        Assert.True(removed.ExitCode == 0 && removed.Stdout.Trim() == "1", removed.Stderr + removed.Stdout);
        Assert.Equal(image.Manifest, await GetManifestAsync(First, "team/app", "v1"));
        Assert.Null(await GetManifestAsync(Second, "team/app", "v1"));

        // A write through the other replica (another tag) changes the repository's version: the entry is not served again.
        await ScaleOutRegistryTests.PushImageAsync(Second, "team/app", "v2", ScaleOutRegistryTests.Image("another tag"));
        Assert.Null(await GetManifestAsync(First, "team/app", "v1"));

        // A tag moved on the second replica is what the first one serves next, though it served the old one just before.
        var before = ScaleOutRegistryTests.Image("before the move");
        var after = ScaleOutRegistryTests.Image("after the move");
        await ScaleOutRegistryTests.PushImageAsync(First, "team/app", "v3", before);
        Assert.Equal(before.Manifest, await GetManifestAsync(First, "team/app", "v3"));
        await ScaleOutRegistryTests.PushImageAsync(Second, "team/app", "v3", after);
        Assert.Equal(after.Manifest, await GetManifestAsync(First, "team/app", "v3"));

        // So is a manifest deleted there, by digest.
        var digest = Digest.Sha256(after.Manifest);
        Assert.Equal(after.Manifest, await GetManifestAsync(First, "team/app", digest.ToString()));
        using (var delete = await Second.DeleteAsync($"/v2/team/app/manifests/{digest}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }

        Assert.Null(await GetManifestAsync(First, "team/app", digest.ToString()));
    }

    /// <summary>The manifest's bytes, or null on 404.</summary>
    private static async Task<byte[]?> GetManifestAsync(HttpClient client, string repository, string reference)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/{repository}/manifests/{reference}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        using var response = await client.SendAsync(request);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }
}
