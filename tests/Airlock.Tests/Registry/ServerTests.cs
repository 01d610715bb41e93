using System.Net;
using System.Text;
using Airlock.Registry;
using Airlock.Registry.Auth;
using Microsoft.AspNetCore.Http;

namespace Airlock.Tests.Registry;

public sealed class ServerTests
{
    [Fact]
    public async Task Read_only_registry_refuses_writes_with_405_and_serves_reads()
    {
        var data = Directory.CreateTempSubdirectory("airlock-ro-").FullName;
        try
        {
            TestImage image;
            await using (var writable = await TestRegistry.StartAsync(dataDirectory: data))
            {
                image = await writable.PushImageAsync("app", "v1");
            }

            await using var registry = await TestRegistry.StartAsync(o => o with { ReadOnly = true }, data);
            using var push = await registry.PushBlobAsync("app", Encoding.UTF8.GetBytes("new"));
            await TestRegistry.AssertError(push, HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
            using var delete = await registry.Client.DeleteAsync("/v2/app/manifests/v1");
            await TestRegistry.AssertError(delete, HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
            using var put = await registry.PutManifestAsync("app", "v2", image.Manifest);
            await TestRegistry.AssertError(put, HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
            using var get = await registry.Client.GetAsync("/v2/app/manifests/v1");
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Access_controller_sees_the_scopes_of_each_request_and_its_refusals_become_401_and_403()
    {
        var controller = new RecordingAccessController();
        await using var registry = await TestRegistry.StartAsync(o => o with { AccessController = controller });

        using var anonymous = await registry.Client.GetAsync("/v2/");
        await TestRegistry.AssertError(anonymous, HttpStatusCode.Unauthorized, "UNAUTHORIZED");
        Assert.Equal("Basic realm=\"airlock\"", anonymous.Headers.WwwAuthenticate.Single().ToString());
        Assert.Empty(controller.Seen.Last());

        registry.Client.DefaultRequestHeaders.Add("X-User", "alice");
        using var base2 = await registry.Client.GetAsync("/v2/");
        Assert.Equal(HttpStatusCode.OK, base2.StatusCode);
        using var pull = await registry.Client.GetAsync("/v2/team/app/tags/list");
        Assert.Equal("repository:team/app:pull", Assert.Single(controller.Seen.Last()).Scope);
        using var mount = await registry.Client.PostAsync("/v2/team/app/blobs/uploads/?mount=sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824&from=other/app", null);
        Assert.Equal(["repository:team/app:pull,push", "repository:other/app:pull"], controller.Seen.Last().Select(r => r.Scope));
        using var delete = await registry.Client.DeleteAsync("/v2/team/app/manifests/v1");
        Assert.Equal("repository:team/app:delete", Assert.Single(controller.Seen.Last()).Scope);
        using var catalog = await registry.Client.GetAsync("/v2/_catalog");
        Assert.Equal("registry:catalog:*", Assert.Single(controller.Seen.Last()).Scope);

        using var denied = await registry.Client.GetAsync("/v2/secret/tags/list");
        await TestRegistry.AssertError(denied, HttpStatusCode.Forbidden, "DENIED");
    }

    [Fact]
    public async Task Extra_endpoints_health_and_metrics_are_served_beside_the_api()
    {
        await using var registry = await TestRegistry.StartAsync(o => o with
        {
            ExtraEndpoints = [new RegistryEndpoint("/token", context => context.Response.WriteAsync("{\"token\":\"t\"}"))],
        });
        Assert.Equal("{\"token\":\"t\"}", await registry.Client.GetStringAsync("/token"));
        using var health = await registry.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        await registry.PushImageAsync("app", "v1");
        (await registry.Client.GetAsync("/v2/app/manifests/missing")).Dispose();
        var metrics = await registry.Client.GetStringAsync("/metrics");
        Assert.Contains("airlock_registry_requests_total{method=\"PUT\",status=\"201\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("airlock_registry_requests_total{method=\"GET\",status=\"404\"} 1", metrics, StringComparison.Ordinal);
        Assert.Contains("airlock_registry_request_duration_seconds_bucket{le=\"+Inf\"}", metrics, StringComparison.Ordinal);
        Assert.Matches("airlock_registry_bytes_received_total [1-9]", metrics);
        Assert.Contains("airlock_registry_store_blobs 3", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stopping_lets_a_download_in_flight_finish()
    {
        var registry = await TestRegistry.StartAsync(o => o with { ZeroCopy = false });
        try
        {
            var content = new byte[24 * 1024 * 1024];
            new Random(3).NextBytes(content);
            var digest = await registry.PushBlobOkAsync("app", content);
            using var response = await registry.Client.GetAsync($"/v2/app/blobs/{digest}", HttpCompletionOption.ResponseHeadersRead);
            var body = await response.Content.ReadAsStreamAsync();
            var first = new byte[1024];
            await body.ReadExactlyAsync(first);
            var stopping = registry.Server.StopAsync(CancellationToken.None);
            var rest = new MemoryStream();
            await body.CopyToAsync(rest);
            await stopping;
            Assert.Equal(content, first.Concat(rest.ToArray()).ToArray());
        }
        finally
        {
            await registry.DisposeAsync();
        }
    }

    private sealed class RecordingAccessController : IAccessController
    {
        public List<IReadOnlyList<AccessRequest>> Seen { get; } = [];

        public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, IReadOnlyList<AccessRequest> requested, CancellationToken cancellationToken)
        {
            lock (Seen)
            {
                Seen.Add(requested);
            }

            var user = context.Request.Headers["X-User"].ToString();
            if (user.Length == 0)
            {
                return ValueTask.FromResult(AccessDecision.Unauthorized("Basic realm=\"airlock\"", "credentials required"));
            }

            return ValueTask.FromResult(requested.Any(r => r.Name == "secret")
                ? AccessDecision.Denied(user, "no access to secret")
                : AccessDecision.Allow(user));
        }
    }
}
