using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Airlock.Node;
using Airlock.Node.Mirror;
using Airlock.Oci;
using Airlock.Tests.Registry;

namespace Airlock.Tests.Node.Mirror;

/// <summary>The mirror over HTTP against real Airlock registries: resolution order, fallback, ns, Range, reload, errors.</summary>
public sealed class NodeMirrorTests
{
    private static readonly string[] ManifestAccept = [MediaTypes.OciIndex, MediaTypes.OciManifest];

    private static async Task<HttpResponseMessage> GetAsync(NodeMirror mirror, string pathAndQuery, HttpMethod? method = null, RangeHeaderValue? range = null)
    {
        using var client = new HttpClient { BaseAddress = mirror.Address };
        using var request = new HttpRequestMessage(method ?? HttpMethod.Get, pathAndQuery);
        foreach (var type in ManifestAccept)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        }

        request.Headers.Range = range;
        return await client.SendAsync(request);
    }

    private static string DigestHeader(HttpResponseMessage response) => response.Headers.GetValues("Docker-Content-Digest").Single();

    [Fact]
    public void Rewrites_apply_the_first_rule_that_changes_the_name_in_pattern_order_with_groups()
    {
        RewriteRule Rule(string pattern, string replacement) => new(pattern, replacement, 1);

        Assert.Equal("mirror/library/alpine", RepositoryRewrite.Apply([Rule("^library/(.*)", "mirror/library/$1")], "library/alpine"));
        Assert.Equal("team/app", RepositoryRewrite.Apply([Rule("^library/(.*)", "x/$1")], "team/app"));
        Assert.Equal("a/team/app", RepositoryRewrite.Apply([Rule("^team/", "b/team/"), Rule("^(team)/", "a/$1/")], "team/app"));
        Assert.Equal("team/app", RepositoryRewrite.Apply([Rule("^nomatch$", "x"), Rule("(", "broken")], "team/app"));
    }

    [Fact]
    public async Task Endpoints_are_tried_in_order_a_miss_falls_through_and_the_default_endpoint_comes_last()
    {
        await using var first = await UpstreamRegistry.StartAsync();
        await using var second = await UpstreamRegistry.StartAsync();
        await using var own = await UpstreamRegistry.StartAsync();
        var inFirst = await first.PushAsync("app", "both", "first copy");
        await second.PushAsync("app", "both", "second copy");
        var inSecond = await second.PushAsync("app", "second-only", "second only");
        var atOwn = await own.PushAsync("app", "own-only", "own only");
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "{{own.Host}}":
                endpoint: ["{{first.Host}}", "{{second.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: false);

        using var both = await GetAsync(mirror, $"/v2/app/manifests/both?ns={own.Host}");
        using var secondOnly = await GetAsync(mirror, $"/v2/app/manifests/second-only?ns={own.Host}");
        using var ownOnly = await GetAsync(mirror, $"/v2/app/manifests/own-only?ns={own.Host}");
        using var nowhere = await GetAsync(mirror, $"/v2/app/manifests/nowhere?ns={own.Host}");

        Assert.Equal(inFirst.Index.Digest.ToString(), DigestHeader(both));
        Assert.Equal(inSecond.Index.Digest.ToString(), DigestHeader(secondOnly));
        Assert.Equal(atOwn.Index.Digest.ToString(), DigestHeader(ownOnly));
        Assert.Equal(HttpStatusCode.NotFound, nowhere.StatusCode);
        Assert.Contains("MANIFEST_UNKNOWN", await nowhere.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains(own.RepositoryRequests, r => r.Contains("/manifests/own-only", StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_the_default_endpoint_disabled_a_miss_never_reaches_the_registry_itself()
    {
        await using var mirrorEndpoint = await UpstreamRegistry.StartAsync();
        await using var own = await UpstreamRegistry.StartAsync();
        await own.PushAsync("app", "1", "own");
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "{{own.Host}}":
                endpoint: ["{{mirrorEndpoint.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true);

        using var response = await GetAsync(mirror, $"/v2/app/manifests/1?ns={own.Host}");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Empty(own.Access.Requests);
        Assert.Single(mirrorEndpoint.RepositoryRequests);
    }

    [Fact]
    public async Task A_wildcard_mirror_serves_every_registry_without_its_own_entry()
    {
        await using var catchAll = await UpstreamRegistry.StartAsync();
        var image = await catchAll.PushAsync("library/busybox", "1", "wildcard");
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "*":
                endpoint: ["{{catchAll.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true);

        using var response = await GetAsync(mirror, "/v2/library/busybox/manifests/1?ns=docker.io");

        Assert.Equal(image.Index.Digest.ToString(), DigestHeader(response));
    }

    [Fact]
    public async Task Blobs_stream_through_with_Range_and_HEAD_passes_size_and_digest()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var image = await upstream.PushAsync("app", "1", "range");
        var layer = image.AmdLayers[0];
        var bytes = image.BytesOf(layer);
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "registry.invalid":
                endpoint: ["{{upstream.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true);

        using var head = await GetAsync(mirror, $"/v2/app/blobs/{layer.Digest}?ns=registry.invalid", HttpMethod.Head);
        using var whole = await GetAsync(mirror, $"/v2/app/blobs/{layer.Digest}?ns=registry.invalid");
        using var tail = await GetAsync(mirror, $"/v2/app/blobs/{layer.Digest}?ns=registry.invalid", range: new RangeHeaderValue(100, null));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(bytes.Length, head.Content.Headers.ContentLength);
        Assert.Equal(layer.Digest.ToString(), DigestHeader(head));
        Assert.Equal(bytes, await whole.Content.ReadAsByteArrayAsync());
        Assert.Equal(HttpStatusCode.PartialContent, tail.StatusCode);
        Assert.Equal(bytes[100..], await tail.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task A_blob_larger_than_the_copy_chunk_arrives_whole_with_its_length_and_not_chunk_encoded()
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var bytes = new byte[(2 * MirrorHandler.CopyChunkSize) + 12345];
        Random.Shared.NextBytes(bytes);
        var blob = new Descriptor { MediaType = MediaTypes.OciLayer, Digest = Digest.Sha256(bytes), Size = bytes.Length };
        await using (var target = Airlock.Remote.RemoteImageStore.Create(ImageReference.Parse($"{upstream.Host}/app:1"), new Airlock.Remote.RemoteOptions()))
        {
            await target.WriteBlobAsync(blob, new MemoryStream(bytes), CancellationToken.None);
        }

        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "registry.invalid":
                endpoint: ["{{upstream.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true);

        using var response = await GetAsync(mirror, $"/v2/app/blobs/{blob.Digest}?ns=registry.invalid");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(bytes.Length, response.Content.Headers.ContentLength);
        Assert.NotEqual(true, response.Headers.TransferEncodingChunked);
        Assert.Equal(bytes, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task A_trickling_upstream_is_forwarded_as_it_arrives_and_a_stall_cuts_the_connection()
    {
        // Each piece is sent only after the client read the one before, so a mirror that held bytes back to fill
        // a chunk would never deliver the first one; after the last piece the upstream stalls with the body unfinished.
        byte[][] pieces = [new byte[1000], new byte[1], new byte[70_000]];
        foreach (var piece in pieces)
        {
            Random.Shared.NextBytes(piece);
        }

        await using var upstream = new TricklingUpstream(pieces, contentLength: 4 * MirrorHandler.CopyChunkSize);
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "registry.invalid":
                endpoint: ["{{upstream.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true, responseTimeout: TimeSpan.FromSeconds(2));
        using var client = new HttpClient { BaseAddress = mirror.Address };

        // The mirror's headers go out with the first body bytes.
        upstream.SendNext();
        using var response = await client.GetAsync($"/v2/app/blobs/{Digest.Sha256("x"u8)}?ns=registry.invalid", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(4 * MirrorHandler.CopyChunkSize, response.Content.Headers.ContentLength);
        await using var body = await response.Content.ReadAsStreamAsync();
        foreach (var piece in pieces)
        {
            var received = new byte[piece.Length];
            await body.ReadExactlyAsync(received).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(piece, received);
            upstream.SendNext();
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<IOException>(() => body.ReadAsync(new byte[1024]).AsTask().WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the stalled transfer was cut after {clock.Elapsed}");
    }

    [Fact]
    public async Task Requests_without_ns_or_with_a_bad_ns_or_a_write_method_get_a_clear_error()
    {
        await using var mirror = await MirrorTestBed.StartMirrorAsync(RegistriesFile.Empty, disableDefault: true);

        using var ping = await GetAsync(mirror, "/v2/");
        using var noNs = await GetAsync(mirror, "/v2/app/manifests/1");
        using var badNs = await GetAsync(mirror, "/v2/app/manifests/1?ns=a/b");
        using var push = await GetAsync(mirror, "/v2/app/blobs/uploads/?ns=registry.invalid", HttpMethod.Post);

        Assert.Equal(HttpStatusCode.OK, ping.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, noNs.StatusCode);
        Assert.Contains("ns query parameter", await noNs.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badNs.StatusCode);
        Assert.Contains("is not a registry host", await badNs.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, push.StatusCode);
    }

    [Theory]
    [InlineData("/v2/zz/%2e%2e/app/manifests/1")]
    [InlineData("/v2/zz/../app/manifests/1")]
    public async Task A_request_in_absolute_form_gets_the_same_path_checks(string path)
    {
        await using var upstream = await UpstreamRegistry.StartAsync();
        var image = await upstream.PushAsync("app", "1", "one");
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "{{upstream.Host}}":
                endpoint: ["{{upstream.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: false);

        var (status, body) = await TestRegistry.SendRawAsync(mirror.Address, "GET", $"http://{mirror.Address.Authority}{path}?ns={upstream.Host}");
        Assert.Equal(400, status);
        Assert.Contains("NAME_INVALID", body, StringComparison.Ordinal);
        Assert.DoesNotContain(upstream.RepositoryRequests, r => r.Contains("/manifests/1", StringComparison.Ordinal));

        (status, _) = await TestRegistry.SendRawAsync(mirror.Address, "GET", $"http://{mirror.Address.Authority}/v2/app/manifests/{image.Index.Digest}?ns={upstream.Host}");
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task When_every_endpoint_is_down_the_answer_is_a_gateway_error_naming_each_within_the_timeouts()
    {
        using var silent = new Blackhole();
        var refused = $"127.0.0.1:{MirrorTestBed.RefusingPort()}";
        var file = MirrorTestBed.Parse($$"""
            mirrors:
              "registry.invalid":
                endpoint: ["{{refused}}", "{{silent.Host}}"]
            """);
        await using var mirror = await MirrorTestBed.StartMirrorAsync(file, disableDefault: true,
            connectTimeout: TimeSpan.FromMilliseconds(500), responseTimeout: TimeSpan.FromSeconds(1));
        var clock = System.Diagnostics.Stopwatch.StartNew();

        using var response = await GetAsync(mirror, "/v2/app/manifests/1?ns=registry.invalid");

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var detail = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors")[0].GetProperty("detail").GetString();
        Assert.Contains(refused, detail, StringComparison.Ordinal);
        Assert.Contains(silent.Host, detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reload_switches_endpoints_for_new_requests()
    {
        await using var before = await UpstreamRegistry.StartAsync();
        await using var after = await UpstreamRegistry.StartAsync();
        var old = await before.PushAsync("app", "1", "before reload");
        var fresh = await after.PushAsync("app", "1", "after reload");
        string Yaml(string endpoint) => $$"""
            mirrors:
              "registry.invalid":
                endpoint: ["{{endpoint}}"]
            """;
        await using var mirror = await MirrorTestBed.StartMirrorAsync(MirrorTestBed.Parse(Yaml(before.Host)), disableDefault: true);

        using var first = await GetAsync(mirror, "/v2/app/manifests/1?ns=registry.invalid");
        mirror.Reload(MirrorTestBed.Parse(Yaml(after.Host)));
        using var second = await GetAsync(mirror, "/v2/app/manifests/1?ns=registry.invalid");

        Assert.Equal(old.Index.Digest.ToString(), DigestHeader(first));
        Assert.Equal(fresh.Index.Digest.ToString(), DigestHeader(second));
    }

    [Fact]
    public async Task Credentials_from_configs_are_used_for_the_endpoint_they_name()
    {
        var htpasswd = Path.GetTempFileName();
        await File.WriteAllTextAsync(htpasswd, $"puller:{BCrypt.Net.BCrypt.HashPassword("secret", 4)}\n");
        try
        {
            var users = new Airlock.Registry.Auth.HtpasswdFile(htpasswd, TimeProvider.System);
            await using var registry = await Airlock.Tests.Registry.TestRegistry.StartAsync(o => o with
            {
                AccessController = new Airlock.Registry.Auth.BasicAccessController(users, Airlock.Registry.Auth.AccessPolicy.Create(anonymousPull: false)),
            });
            var host = registry.Server.Address.Authority;
            var image = Airlock.Tests.Node.Containerd.TestImage.Build("private");
            var pushOptions = new Airlock.Remote.RemoteOptions { Credentials = Airlock.Remote.StaticCredentialSource.FromUserPass("puller:secret") };
            await using (var target = Airlock.Remote.RemoteImageStore.Create(ImageReference.Parse($"{host}/app:1"), pushOptions))
            {
                await image.CopyToAsync(target, "1", CancellationToken.None);
            }

            string Yaml(string password) => $$"""
                mirrors:
                  "registry.invalid":
                    endpoint: ["{{host}}"]
                configs:
                  "{{host}}":
                    auth:
                      username: puller
                      password: {{password}}
                """;
            await using var mirror = await MirrorTestBed.StartMirrorAsync(MirrorTestBed.Parse(Yaml("secret")), disableDefault: true);
            using var allowed = await GetAsync(mirror, "/v2/app/manifests/1?ns=registry.invalid");
            mirror.Reload(MirrorTestBed.Parse(Yaml("wrong")));
            using var refused = await GetAsync(mirror, "/v2/app/manifests/1?ns=registry.invalid");

            Assert.Equal(image.Index.Digest.ToString(), DigestHeader(allowed));
            Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
            Assert.Contains("HTTP 401", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(htpasswd);
        }
    }
}
