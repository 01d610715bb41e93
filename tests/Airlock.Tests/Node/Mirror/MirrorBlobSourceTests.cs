using System.Collections.Concurrent;
using System.Net;
using Airlock.Node;
using Airlock.Node.Mirror;
using Airlock.Oci;
using Microsoft.AspNetCore.Http;

namespace Airlock.Tests.Node.Mirror;

/// <summary>
/// The node mirror's side of the peer-to-peer mirror: which registries are shared, hosts.toml pointing them at the node
/// mirror, and blob requests of shared registries handed to the blob source, which fetches through the mirror's endpoints.
/// </summary>
public sealed class MirrorBlobSourceTests
{
    [Fact]
    public void Registries_under_mirrors_are_shared_star_shares_all_and_localhost_never()
    {
        var listed = MirrorTestBed.Parse("""
            mirrors:
              registry.example:
                endpoint: ["https://m.example"]
              "localhost:5000":
                endpoint: ["http://localhost:5000"]
            configs:
              creds.example:
                auth:
                  username: u
                  password: p
            """);
        var star = MirrorTestBed.Parse("""
            mirrors:
              "*":
            """);

        Assert.True(RegistryEndpoints.IsPeerShared(listed, "registry.example"));
        Assert.False(RegistryEndpoints.IsPeerShared(listed, "creds.example"));
        Assert.False(RegistryEndpoints.IsPeerShared(listed, "other.example"));
        Assert.False(RegistryEndpoints.IsPeerShared(listed, "localhost:5000"));
        Assert.True(RegistryEndpoints.IsPeerShared(star, "anything.example"));
        Assert.False(RegistryEndpoints.IsPeerShared(star, "127.0.0.1:5000"));
        Assert.False(RegistryEndpoints.IsPeerShared(star, "[::1]:5000"));
    }

    [Fact]
    public async Task With_peers_shared_registries_are_pointed_at_the_node_mirror_and_the_others_keep_K3s_hosts_toml()
    {
        var file = MirrorTestBed.Parse("""
            mirrors:
              registry.example:
                endpoint: ["https://m.example"]
            configs:
              creds.example:
                tls:
                  insecure_skip_verify: true
            """);
        var options = new ContainerdConfigOptions { DataDir = Path.Combine(Path.GetTempPath(), "airlock-share-" + Guid.NewGuid().ToString("N")), Generator = "k3s" };
        var mirror = new IPEndPoint(IPAddress.Loopback, 5100);

        var without = await ContainerdRenderer.PlanAsync(file, options, false, CancellationToken.None, nodeMirror: mirror);
        var with = await ContainerdRenderer.PlanAsync(file, options, false, CancellationToken.None, nodeMirror: mirror, sharePeers: true);

        string Hosts(RenderPlan plan, string directory) => plan.Files.Single(f => f.Path == Path.Combine(options.CertsDir, directory, ContainerdRenderer.HostsTomlName)).Content;
        Assert.DoesNotContain("127.0.0.1:5100", Hosts(without, "registry.example"), StringComparison.Ordinal);
        Assert.Contains("server = \"http://127.0.0.1:5100/v2\"", Hosts(with, "registry.example"), StringComparison.Ordinal);
        Assert.Equal(Hosts(without, "creds.example"), Hosts(with, "creds.example"));
    }

    [Fact]
    public async Task Blobs_of_shared_registries_go_to_the_source_which_fetches_through_the_mirror_endpoints_and_the_rest_go_upstream()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var image = await upstream.PushAsync("team/app", "1", "shared blob");
        await using var other = await UpstreamRegistry.StartAsync();
        var otherImage = await other.PushAsync("team/app", "1", "not shared");
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "shared.example":
                endpoint: ["{{upstream.Host}}"]
            """);
        var source = new RecordingSource();
        await using var mirror = await NodeMirror.StartAsync(file, new MirrorOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            BlobSource = source,
        }, CancellationToken.None);
        using var client = new HttpClient { BaseAddress = mirror.Address };
        var layer = image.AmdLayers[^1];
        var otherLayer = otherImage.AmdLayers[^1];

        var shared = await client.GetByteArrayAsync($"/v2/team/app/blobs/{layer.Digest}?ns=shared.example");
        var notShared = await client.GetByteArrayAsync($"/v2/team/app/blobs/{otherLayer.Digest}?ns={other.Host}");
        var metrics = await client.GetStringAsync("/metrics");

        Assert.Equal(image.BytesOf(layer), shared);
        Assert.Equal(otherImage.BytesOf(otherLayer), notShared);
        Assert.Equal([$"shared.example team/app {layer.Digest}"], source.Requests);
        Assert.Equal("source metrics", metrics);
    }

    [Fact]
    public async Task Tags_of_shared_registries_are_reported_to_the_source_and_one_the_source_resolves_is_answered_without_the_registrys_tag()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var old = await upstream.PushAsync("team/app", "latest", "old");
        var current = await upstream.PushAsync("team/app", "latest", "current");
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "shared.example":
                endpoint: ["{{upstream.Host}}"]
            """);
        var source = new RecordingSource();
        await using var mirror = await NodeMirror.StartAsync(file, new MirrorOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            BlobSource = source,
        }, CancellationToken.None);
        using var client = new HttpClient { BaseAddress = mirror.Address };
        client.DefaultRequestHeaders.Accept.ParseAdd(old.Index.MediaType);

        // No answer from the source: the registry's (current) tag, reported to the source.
        using var fromRegistry = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/team/app/manifests/latest?ns=shared.example"));
        Assert.Equal(current.Index.Digest.ToString(), fromRegistry.Headers.GetValues("Docker-Content-Digest").Single());
        var reported = Assert.Single(source.Tags);
        Assert.Equal(new MirrorTag("shared.example", "team/app", "latest", current.Index.Digest, current.Index.MediaType, current.Index.Size), reported);

        // The source (a peer, with --p2p-share-tags) knows an older answer: HEAD gets it, GET gets that manifest by digest.
        source.Resolves = new MirrorTag("shared.example", "team/app", "latest", old.Index.Digest, old.Index.MediaType, old.Index.Size);
        upstream.Access.Requests.Clear();
        using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/team/app/manifests/latest?ns=shared.example"));
        var body = await client.GetByteArrayAsync("/v2/team/app/manifests/latest?ns=shared.example");

        Assert.Equal(old.Index.Digest.ToString(), head.Headers.GetValues("Docker-Content-Digest").Single());
        Assert.Equal(old.Index.Size, head.Content.Headers.ContentLength);
        Assert.Equal(old.Index.Digest, Digest.Sha256(body));
        Assert.DoesNotContain(upstream.RepositoryRequests, r => r.Contains("/manifests/latest", StringComparison.Ordinal));
        Assert.Single(source.Tags);
    }

    /// <summary>Serves every blob asked of it from the registry, through the access the mirror lent it, and records the requests.</summary>
    private sealed class RecordingSource : IMirrorBlobSource
    {
        private IMirrorRegistryAccess? _access;

        public ConcurrentQueue<string> Requests { get; } = new();

        public ConcurrentQueue<MirrorTag> Tags { get; } = new();

        public MirrorTag? Resolves { get; set; }

        public void TagResolved(MirrorTag tag) => Tags.Enqueue(tag);

        public Task<MirrorTag?> ResolveTagAsync(string registry, string repository, string tag, CancellationToken cancellationToken) => Task.FromResult(Resolves);

        public void Attach(IMirrorRegistryAccess registries) => _access = registries;

        public bool Shares(RegistriesFile registries, string registry) => RegistryEndpoints.IsPeerShared(registries, registry);

        public async Task ServeBlobAsync(HttpContext context, MirrorBlobRequest request)
        {
            Requests.Enqueue($"{request.Registry} {request.Repository} {request.Digest}");
            await using var body = await _access!.OpenBlobAsync(request.Registry, request.Repository, request.Digest, context.RequestAborted);
            context.Response.ContentLength = body.Length;
            await body.CopyToAsync(context.Response.Body, context.RequestAborted);
        }

        public async Task<bool> TryServeOtherAsync(HttpContext context)
        {
            if (context.Request.Path != "/metrics")
            {
                return false;
            }

            await context.Response.WriteAsync("source metrics", context.RequestAborted);
            return true;
        }
    }
}
