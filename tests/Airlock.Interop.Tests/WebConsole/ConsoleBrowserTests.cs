using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Airlock.Interop.Tests.Fixtures;
using Airlock.Registry;
using Airlock.Registry.Api;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Airlock.Interop.Tests.WebConsole;

/// <summary>
/// The web console in a real browser (Debian's Chromium) against a real <c>airlock registry</c> process holding
/// content pushed by skopeo and loaded by <c>airlock images load</c>. Every page is kept as a screenshot under
/// <c>.test-results/console/</c>, and no page may log an error.
/// </summary>
public sealed class ConsoleBrowserTests(ConsoleSite site) : IClassFixture<ConsoleSite>
{
    [Fact]
    public async Task The_repositories_page_lists_searches_and_sorts_from_the_keyboard()
    {
        await using var watched = await site.OpenAsync("admin");
        var page = watched.Page;
        await page.GotoAsync("/ui/");
        var names = page.Locator("#repositories tbody tr td:first-child a");
        await Expect(names).ToHaveTextAsync(["library/busybox", "loaded/library/busybox", "loaded/team-a/app", "team-a/app", "team-a/tools", "team-b/multi"]);
        await watched.ScreenshotAsync("repositories");

        await page.Keyboard.PressAsync("/");
        await Expect(page.Locator("#repository-search")).ToBeFocusedAsync();
        await page.Keyboard.TypeAsync("team-");
        await Expect(names).ToHaveTextAsync(["loaded/team-a/app", "team-a/app", "team-a/tools", "team-b/multi"]);
        Assert.Contains("q=team-", page.Url, StringComparison.Ordinal);

        // Tab to the size column's sort button and press Enter: largest first.
        for (var i = 0; i < 10 && await page.EvaluateAsync<string?>("document.activeElement?.dataset?.sort ?? null") != "size"; i++)
        {
            await page.Keyboard.PressAsync("Tab");
        }

        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("th[aria-sort=descending] [data-sort=size]")).ToBeVisibleAsync();
        await Expect(names.First).ToHaveTextAsync("team-b/multi");
        await Expect(page.Locator("[data-sort=size]")).ToBeFocusedAsync();
        Assert.Empty(watched.Problems);
    }

    [Fact]
    public async Task The_repositories_page_reads_on_a_phone_and_in_dark_mode()
    {
        await using var phone = await site.OpenAsync("admin", width: 390, height: 844, scheme: ColorScheme.Dark);
        var page = phone.Page;
        await page.GotoAsync("/ui/");
        await Expect(page.Locator("#repositories tbody tr")).ToHaveCountAsync(6);

        // Nothing wider than the screen, and the dark palette in use.
        Assert.True(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways on a phone");
        var background = await page.EvaluateAsync<string>("getComputedStyle(document.body).backgroundColor");
        Assert.Equal("rgb(13, 17, 23)", background);
        await phone.ScreenshotAsync("repositories-phone-dark");
        Assert.Empty(phone.Problems);
    }

    [Fact]
    public async Task A_repository_page_shows_tags_platforms_referrers_and_copies_the_pull_command()
    {
        await using var watched = await site.OpenAsync("admin");
        var page = watched.Page;
        await watched.Context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"]);
        await page.GotoAsync("/ui/");
        await page.GetByRole(AriaRole.Link, new() { Name = "team-a/app", Exact = true }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Uri(site.Registry.BaseAddress, "/ui/repositories/team-a/app").ToString());
        await Expect(page.Locator("h1")).ToHaveTextAsync("team-a/app");

        var row = page.Locator("#tags tbody tr").First;
        await Expect(row.Locator("td").Nth(0)).ToHaveTextAsync("1");
        await Expect(row.Locator("td").Nth(1).Locator("code")).ToHaveAttributeAsync("title", site.App.Digest.ToString());
        await Expect(row.Locator("td").Nth(2)).ToHaveTextAsync("OCI manifest");
        await Expect(row.Locator("td").Nth(3)).ToHaveTextAsync("linux/amd64");
        await Expect(row.Locator(".referrer a")).ToHaveTextAsync("signature");
        await Expect(row.Locator(".referrer a")).ToHaveAttributeAsync("href", $"/ui/repositories/team-a/app/manifests/{site.SignatureDigest}");
        await watched.ScreenshotAsync("repository");

        await page.GetByLabel("skopeo").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy pull command", Exact = true }).ClickAsync();
        var expected = $"skopeo copy --src-tls-verify=false --src-creds admin docker://{site.Registry.Host}/team-a/app:1 oci-archive:app-1.tar";
        await Expect(page.Locator("#pull-command")).ToHaveTextAsync(expected);
        Assert.Equal(expected, await page.EvaluateAsync<string>("navigator.clipboard.readText()"));

        await page.GetByLabel("ctr (containerd)").CheckAsync();
        await row.GetByRole(AriaRole.Button).ClickAsync();
        Assert.Equal($"ctr -n k8s.io images pull --plain-http --user admin {site.Registry.Host}/team-a/app:1", await page.EvaluateAsync<string>("navigator.clipboard.readText()"));

        // The tag filters: signed only keeps the tag; a filter no tag matches empties the table.
        await page.Locator("#tag-signed").SelectOptionAsync("unsigned");
        await Expect(page.Locator("#tags tbody")).ToHaveTextAsync("No tag matches.");
        await page.Locator("#tag-signed").SelectOptionAsync("signed");
        await Expect(page.Locator("#tags tbody tr")).ToHaveCountAsync(1);

        await page.GotoAsync("/ui/repositories/team-b/multi");
        await Expect(page.Locator("#tags tbody tr").First.Locator("td").Nth(3)).ToHaveTextAsync("linux/amd64linux/arm64");
        await Expect(page.Locator("#tags tbody tr").First.Locator("td").Nth(2)).ToHaveTextAsync("OCI index");
        Assert.Empty(watched.Problems);
    }

    [Fact]
    public async Task A_manifest_page_shows_layers_with_the_repositories_sharing_them_and_the_config()
    {
        await using var watched = await site.OpenAsync("admin");
        var page = watched.Page;
        await page.GotoAsync("/ui/repositories/team-a/app");
        await page.Locator("#tags tbody tr").First.GetByRole(AriaRole.Link, new() { Name = "1", Exact = true }).ClickAsync();

        await Expect(page.Locator("h1")).ToHaveTextAsync("team-a/app:1");
        var layer = page.Locator("section[aria-labelledby=layers-heading] tbody tr").First;
        // The busybox layer: in the copies, in the Docker-typed image and in the multi-arch image's amd64 manifest.
        await Expect(layer.Locator("td").Nth(4).Locator("a")).ToHaveTextAsync(["library/busybox", "loaded/library/busybox", "loaded/team-a/app", "team-a/tools", "team-b/multi"]);
        await Expect(page.Locator("section[aria-labelledby=config-heading]")).ToContainTextAsync("linux/amd64");
        await Expect(page.Locator("section[aria-labelledby=referrers-heading] tbody tr")).ToHaveCountAsync(1);
        await watched.ScreenshotAsync("manifest");

        // The signature's own page names what it signs.
        await page.Locator("section[aria-labelledby=referrers-heading] tbody a").First.ClickAsync();
        await Expect(page).ToHaveURLAsync(new Uri(site.Registry.BaseAddress, $"/ui/repositories/team-a/app/manifests/{site.SignatureDigest}").ToString());
        await Expect(page.Locator("h1")).ToHaveTextAsync($"team-a/app@sha256:{site.SignatureDigest.Encoded[..12]}");
        await Expect(page.Locator(".facts").First).ToContainTextAsync(ConsoleSite.SignatureType);
        await Expect(page.Locator(".facts").First).ToContainTextAsync($"Refers to{site.App.Digest.ToString()[..19]}");
        Assert.Empty(watched.Problems);
    }

    [Fact]
    public async Task The_bundles_page_shows_the_load_and_builds_the_save_command_from_a_selection()
    {
        await using var watched = await site.OpenAsync("admin");
        var page = watched.Page;
        await page.GotoAsync("/ui/bundles");

        var load = page.Locator("section[aria-labelledby=loads-heading] tbody tr");
        await Expect(load).ToHaveCountAsync(1);
        await Expect(load.Locator("td").Nth(1)).ToHaveTextAsync("bundle.tar.zst");
        await Expect(load.Locator("td").Nth(2)).ToHaveTextAsync("admin");
        await Expect(load.Locator("li a")).ToHaveTextAsync(["loaded/team-a/app:1", "loaded/library/busybox:1.36"]);

        await page.Locator("#bundle-search").FillAsync("team-");
        await Expect(page.Locator("[data-repository='library/busybox']")).ToHaveCountAsync(0);
        await page.Locator("[data-repository='team-a/tools']").ClickAsync();
        await page.GetByLabel("2", new() { Exact = true }).CheckAsync();
        await page.Locator("[data-repository='team-b/multi']").ClickAsync();
        await page.GetByLabel("1", new() { Exact = true }).CheckAsync();
        await page.Locator("#bundle-file").FillAsync("site.tar.zst");
        await Expect(page.Locator("#save-command")).ToHaveTextAsync(
            $"airlock images save --include-referrers -o site.tar.zst {site.Registry.Host}/team-a/tools:2 {site.Registry.Host}/team-b/multi:1");
        await watched.ScreenshotAsync("bundles");
        Assert.Empty(watched.Problems);
    }

    [Fact]
    public async Task The_storage_page_draws_the_store_size_the_collections_and_the_uploads_in_flight()
    {
        await using var watched = await site.OpenAsync("admin");
        var page = watched.Page;
        await page.GotoAsync("/ui/");
        await page.GetByRole(AriaRole.Link, new() { Name = "Storage" }).ClickAsync();

        await Expect(page.Locator("h1")).ToHaveTextAsync("Storage and garbage collection");
        await Expect(page.Locator("section[aria-labelledby=size-heading] svg path.chart-line")).ToHaveCountAsync(1);
        await Expect(page.Locator("section[aria-labelledby=gc-heading] tbody tr")).ToHaveCountAsync(1);
        await Expect(page.Locator("section[aria-labelledby=gc-heading] svg rect.chart-bar")).ToHaveCountAsync(1);
        var upload = page.Locator("section[aria-labelledby=uploads-heading] tbody tr");
        await Expect(upload).ToHaveCountAsync(1);
        await Expect(upload.Locator("td").Nth(0)).ToHaveTextAsync("team-a/app");
        await Expect(upload.Locator("td").Nth(3)).ToHaveTextAsync("39 KiB");
        await Expect(page.Locator("section[aria-labelledby=uploads-heading] svg rect.chart-bar")).ToHaveCountAsync(1);
        await watched.ScreenshotAsync("storage");
        Assert.Empty(watched.Problems);
    }

    [Fact]
    public async Task A_user_limited_by_the_access_file_sees_only_its_repositories_in_the_pages_and_the_api()
    {
        await using var watched = await site.OpenAsync("alice");
        var page = watched.Page;
        await page.GotoAsync("/ui/");
        await Expect(page.Locator("#repositories tbody tr td:first-child a")).ToHaveTextAsync(["team-a/app", "team-a/tools"]);
        await Expect(page.Locator("#user")).ToHaveTextAsync("Signed in as alice");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Storage" })).ToBeHiddenAsync();
        await watched.ScreenshotAsync("repositories-alice");

        var api = await watched.Context.APIRequest.GetAsync("/api/v1/repositories");
        Assert.Equal(200, api.Status);
        using (var json = JsonDocument.Parse(await api.TextAsync()))
        {
            Assert.Equal(["team-a/app", "team-a/tools"], json.RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetProperty("name").GetString()));
        }

        // The bundle loaded images into loaded/…, which alice may not pull: the record is not hers to see.
        await page.GotoAsync("/ui/bundles");
        await Expect(page.Locator("section[aria-labelledby=loads-heading] tbody")).ToContainTextAsync("No bundle has been loaded");

        await page.GotoAsync("/ui/repositories/team-b/multi");
        await Expect(page.Locator(".error")).ToContainTextAsync("pull on repository team-b/multi is not allowed for user alice");
        Assert.All(watched.Problems, problem => Assert.Contains("status of 403", problem, StringComparison.Ordinal));
        Assert.NotEmpty(watched.Problems);
    }

    [Fact]
    public async Task Without_credentials_the_console_and_the_api_answer_401_with_the_basic_challenge()
    {
        using var http = site.Registry.CreateHttpClient();
        foreach (var path in new[] { "ui/", "ui/storage", "api/v1", "api/v1/repositories", "api/v1/storage" })
        {
            using var response = await http.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Basic realm=\"Airlock Registry\"", response.Headers.WwwAuthenticate.ToString());
        }

        // A browser without credentials is challenged and gets no page (headless, nobody can answer the prompt).
        await using var watched = await site.OpenAsync(user: null);
        var refused = await Assert.ThrowsAsync<PlaywrightException>(() => watched.Page.GotoAsync("/ui/"));
        Assert.Contains("ERR_INVALID_AUTH_CREDENTIALS", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_ui_false_the_console_is_not_served()
    {
        await using var registry = await RegistryProcess.StartAsync(RegistryKind.Airlock, new RegistryOptions { AirlockArguments = ["--ui=false"] });
        using var http = registry.CreateHttpClient();

        using var page = await http.GetAsync("ui/");
        using var api = await http.GetAsync("api/v1");

        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);
    }

    [Fact]
    public async Task The_cluster_page_is_hidden_without_a_cluster_and_warns_of_expiring_certificates_with_one()
    {
        await using (var watched = await site.OpenAsync("admin"))
        {
            await watched.Page.GotoAsync("/ui/");
            await Expect(watched.Page.Locator("#repositories tbody tr").First).ToBeVisibleAsync();
            await Expect(watched.Page.GetByRole(AriaRole.Link, new() { Name = "Cluster" })).ToBeHiddenAsync();
        }

        // No cluster server exists yet: the page is drawn from a cluster view supplied as the composition root would.
        var now = DateTimeOffset.UtcNow;
        var view = new FixedCluster(new ClusterSnapshot(
            [
                new ClusterNode("server-1", "10.0.0.1", "server", now.AddSeconds(-20), now.AddDays(300), ["registry.local/app:1", "registry.local/pause:3.9"]),
                new ClusterNode("agent-1", "10.0.0.2", "agent", now.AddMinutes(-2), now.AddDays(10), ["registry.local/app:1"]),
            ],
            0.82));
        var data = Directory.CreateTempSubdirectory("airlock-console-cluster-").FullName;
        try
        {
            await using var server = await RegistryServer.StartAsync(new RegistryServerOptions
            {
                DataDirectory = data,
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                Cluster = view,
            }, NullLoggerFactory.Instance, CancellationToken.None);
            await using var watched = await WatchedPage.OpenAsync(site.Chromium, new BrowserNewContextOptions
            {
                BaseURL = server.Address.ToString(),
                ViewportSize = new ViewportSize { Width = 1280, Height = 800 },
            });
            var page = watched.Page;
            await page.GotoAsync("/ui/");
            await page.GetByRole(AriaRole.Link, new() { Name = "Cluster" }).ClickAsync();
            await Expect(page.Locator("section[aria-labelledby=nodes-heading] tbody tr")).ToHaveCountAsync(2);
            await Expect(page.Locator(".banner.warn")).ToContainTextAsync("agent-1");
            await Expect(page.Locator(".badge.warn")).ToHaveCountAsync(1);
            await Expect(page.Locator(".ring-text")).ToHaveTextAsync("82%");
            await watched.ScreenshotAsync("cluster");
            Assert.Empty(watched.Problems);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private sealed class FixedCluster(ClusterSnapshot snapshot) : IClusterView
    {
        public ValueTask<ClusterSnapshot> SnapshotAsync(CancellationToken cancellationToken) => ValueTask.FromResult(snapshot);
    }
}
