using System.Collections;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Airlock.Bundles.Sync;
using Airlock.Cli.Hosting;
using Airlock.Oci;
using Airlock.Registry;
using Airlock.Registry.Auth;
using Airlock.Remote;
using Airlock.Tests.Registry;
using Airlock.Tests.Registry.Auth;

namespace Airlock.Tests.Bundles.Sync;

/// <summary>Sync between two real in-process registries over loopback HTTP.</summary>
public sealed class ImageSyncTests : IAsyncLifetime
{
    private readonly TempDirectory _temp = new();
    private TestRegistry _source = null!;
    private TestRegistry _target = null!;
    private RegistryClient _client = null!;

    private string Source => Host(_source);

    private string Target => Host(_target);

    public async Task InitializeAsync()
    {
        _source = await TestRegistry.StartAsync();
        _target = await TestRegistry.StartAsync();
        _client = new RegistryClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _source.DisposeAsync();
        await _target.DisposeAsync();
        _temp.Dispose();
    }

    private static string Host(TestRegistry registry) => $"{registry.Server.Address.Host}:{registry.Server.Address.Port}";

    private async Task<Digest> SeedAsync(string repository, string tag, int seed)
    {
        await using var store = RemoteImageStore.Create(ImageReference.Parse($"{Source}/{repository}"), _client);
        return (await TestImages.AddImageAsync(store, TestImages.Amd64, [TestImages.MakeLayer(seed, 512)], tag)).Digest;
    }

    private async Task<Digest?> DigestAtAsync(string reference)
    {
        var image = ImageReference.Parse(reference);
        try
        {
            return (await _client.ResolveAsync(image, image.Identifier, CancellationToken.None)).Digest;
        }
        catch (RegistryException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    private static (SyncConfig Config, IReadOnlyList<SyncConfigProblem> Warnings) Parse(string yaml, IReadOnlyDictionary<string, string>? environment = null) =>
        SyncConfigReader.Parse(yaml, "sync.yaml", name => environment?.GetValueOrDefault(name), File.ReadAllText);

    private static async Task<IReadOnlyList<SyncResult>> RunAsync(SyncConfig config, bool checkOnly = false, RemoteOptions? options = null)
    {
        using var sync = new ImageSync(config, options ?? new RemoteOptions());
        return await sync.RunAsync(checkOnly, null, CancellationToken.None);
    }

    [Fact]
    public async Task Guide_shaped_file_with_env_mirror_copies_the_image_with_the_same_digest_and_a_second_run_copies_nothing()
    {
        var pause = await SeedAsync("canonical/k8s-snap/pause", "3.10", 1);
        var coredns = await SeedAsync("canonical/coredns", "1.11.1", 2);
        var (config, warnings) = Parse("""
            version: 1
            creds:
              - registry: SOURCE
                tls: disabled
                repoAuth: true
            defaults:
              parallel: 2
              interval: 60m
            sync:
            - source: SOURCE/canonical/k8s-snap/pause:3.10
              target: '{{ env "MIRROR" }}/canonical/k8s-snap/pause:3.10'
              type: image
            - source: SOURCE/canonical/coredns:1.11.1
              target: '{{ env "MIRROR" }}/canonical/coredns:1.11.1'
              type: image
            """.Replace("SOURCE", Source, StringComparison.Ordinal), new Dictionary<string, string> { ["MIRROR"] = Target });

        Assert.Contains(warnings, w => w.Message.Contains("repoAuth", StringComparison.Ordinal) && w.Line == 5);
        Assert.Equal(2, config.Parallel);
        var first = await RunAsync(config);
        Assert.All(first, r => Assert.Equal(SyncStatus.Copied, r.Status));
        Assert.Equal(pause, await DigestAtAsync($"{Target}/canonical/k8s-snap/pause:3.10"));
        Assert.Equal(coredns, await DigestAtAsync($"{Target}/canonical/coredns:1.11.1"));

        var second = await RunAsync(config);
        Assert.Equal([SyncStatus.UpToDate, SyncStatus.UpToDate], second.Select(r => r.Status));
        Assert.Equal(pause.ToString(), second.Single(r => r.Target.Contains("pause", StringComparison.Ordinal)).Digest);
    }

    [Fact]
    public async Task Repository_entry_copies_the_tags_allow_keeps_and_deny_does_not_drop_with_whole_tag_matching()
    {
        foreach (var (tag, seed) in new[] { ("1.0", 1), ("1.1", 2), ("1.1-rc1", 3), ("11.0", 4), ("latest", 5) })
        {
            await SeedAsync("app", tag, seed);
        }

        var (config, _) = Parse($$"""
            version: 1
            sync:
            - source: {{Source}}/app
              target: {{Target}}/mirror/app
              type: repository
              tags:
                allow: ['1\..*', 'latest']
                deny: ['.*-rc[0-9]+', 'latest']
            """);
        var results = await RunAsync(config);

        // "1\..*" anchored does not match "11.0"; "latest" is allowed then denied.
        Assert.Equal(["1.0", "1.1"], results.Select(r => ImageReference.Parse(r.Target).Tag));
        Assert.Equal(["1.0", "1.1"], (await _client.ListTagsAsync(ImageReference.Parse($"{Target}/mirror/app"), CancellationToken.None)).Order());
        Assert.Equal(await DigestAtAsync($"{Source}/app:1.1"), await DigestAtAsync($"{Target}/mirror/app:1.1"));
    }

    [Fact]
    public async Task Registry_entry_copies_every_repository_of_the_catalog()
    {
        await SeedAsync("a/one", "v1", 1);
        await SeedAsync("b/two", "v2", 2);
        await SeedAsync("b/two", "v3", 3);
        var (config, _) = Parse($"version: 1\nsync:\n- source: {Source}\n  target: {Target}\n  type: registry\n");

        var results = await RunAsync(config);

        Assert.Equal(3, results.Count(r => r.Status == SyncStatus.Copied));
        Assert.Equal(["a/one", "b/two"], (await _client.CatalogAsync(Target, CancellationToken.None)).Order());
        Assert.Equal(await DigestAtAsync($"{Source}/b/two:v3"), await DigestAtAsync($"{Target}/b/two:v3"));
    }

    [Fact]
    public async Task Check_copies_nothing_and_reports_what_would_be_copied_then_up_to_date_after_a_sync()
    {
        var digest = await SeedAsync("app", "1", 1);
        var (config, _) = Parse($"version: 1\nsync:\n- source: {Source}/app\n  target: {Target}/app\n  type: repository\n");

        var check = Assert.Single(await RunAsync(config, checkOnly: true));
        Assert.Equal((SyncStatus.WouldCopy, digest.ToString()), (check.Status, check.Digest));
        Assert.Null(await DigestAtAsync($"{Target}/app:1"));
        Assert.Empty(await _client.CatalogAsync(Target, CancellationToken.None));

        await RunAsync(config);
        Assert.Equal(SyncStatus.UpToDate, Assert.Single(await RunAsync(config, checkOnly: true)).Status);
    }

    [Fact]
    public async Task A_retagged_source_is_copied_again()
    {
        await SeedAsync("app", "1", 1);
        var (config, _) = Parse($"version: 1\nsync:\n- source: {Source}/app:1\n  target: {Target}/app:1\n  type: image\n");
        await RunAsync(config);

        var moved = await SeedAsync("app", "1", 2);
        Assert.Equal(SyncStatus.Copied, Assert.Single(await RunAsync(config)).Status);
        Assert.Equal(moved, await DigestAtAsync($"{Target}/app:1"));
    }

    [Fact]
    public async Task Platform_keeps_one_manifest_of_an_index_and_is_up_to_date_on_the_next_run()
    {
        await using (var store = RemoteImageStore.Create(ImageReference.Parse($"{Source}/multi"), _client))
        {
            var amd = await TestImages.AddImageAsync(store, TestImages.Amd64, [TestImages.MakeLayer(1, 256)]);
            var arm = await TestImages.AddImageAsync(store, TestImages.Arm64, [TestImages.MakeLayer(2, 256)]);
            await TestImages.AddIndexAsync(store, [amd, arm], "1");
            var (config, _) = Parse($"version: 1\nsync:\n- source: {Source}/multi:1\n  target: {Target}/multi:1\n  type: image\n  platform: linux/arm64\n");

            Assert.Equal(SyncStatus.Copied, Assert.Single(await RunAsync(config)).Status);
            Assert.Equal(arm.Digest, await DigestAtAsync($"{Target}/multi:1"));
            Assert.Equal(SyncStatus.UpToDate, Assert.Single(await RunAsync(config)).Status);
        }
    }

    [Fact]
    public async Task Creds_from_the_file_log_in_to_a_registry_that_requires_them()
    {
        var htpasswd = _temp.File("htpasswd");
        File.WriteAllLines(htpasswd, [HtpasswdFileTests.Entry("mirror", "s3cret")]);
        using var auth = RegistryAuthentication.Create(new RegistryAuthOptions { HtpasswdPath = htpasswd }, TimeProvider.System);
        await using var locked = await TestRegistry.StartAsync(o => o with { AccessController = auth.AccessController });
        var digest = await SeedAsync("app", "1", 1);
        var body = $"sync:\n- source: {Source}/app:1\n  target: {Host(locked)}/app:1\n  type: image\n";

        var refused = Assert.Single(await RunAsync(Parse("version: 1\n" + body).Config));
        Assert.Equal(SyncStatus.Failed, refused.Status);

        var (config, _) = Parse($"version: 1\ncreds:\n- registry: {Host(locked)}\n  user: mirror\n  pass: '{{{{ env \"PASSWORD\" }}}}'\n" + body,
            new Dictionary<string, string> { ["PASSWORD"] = "s3cret" });
        // A wrong --creds for every registry loses to the file's entry for this one.
        var options = new RemoteOptions { Credentials = StaticCredentialSource.FromUserPass("someone:wrong") };
        Assert.Equal(SyncStatus.Copied, Assert.Single(await RunAsync(config, options: options)).Status);
        using var authenticated = new RegistryClient(new RemoteOptions { Credentials = StaticCredentialSource.FromUserPass("mirror:s3cret") });
        var target = ImageReference.Parse($"{Host(locked)}/app:1");
        Assert.Equal(digest, (await authenticated.ResolveAsync(target, "1", CancellationToken.None)).Digest);
    }

    [Fact]
    public async Task Cli_check_and_sync_print_results_and_exit_1_while_something_would_be_copied()
    {
        var digest = await SeedAsync("app", "1", 1);
        var file = _temp.File("sync.yaml");
        File.WriteAllText(file, $"version: 1\nsync:\n- source: {Source}/app\n  target: {Target}/app\n  type: repository\n");

        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(1, await AirlockCli.RunAsync(["images", "sync", "-f", file, "--check", "--output", "json"], new Hashtable(), output, error));
        var row = Assert.Single(JsonDocument.Parse(output.ToString()).RootElement.EnumerateArray());
        Assert.Equal(("WouldCopy", digest.ToString()), (row.GetProperty("status").GetString(), row.GetProperty("digest").GetString()));

        output = new StringWriter();
        Assert.Equal(0, await AirlockCli.RunAsync(["images", "sync", "-f", file, "--once"], new Hashtable(), output, error));
        Assert.Contains($"copied {Source}/app:1 -> {Target}/app:1 ({digest})", output.ToString(), StringComparison.Ordinal);

        output = new StringWriter();
        Assert.True(await AirlockCli.RunAsync(["images", "sync", "-f", file, "--check"], new Hashtable(), output, error) == 0, error.ToString());
        Assert.Contains("1 images: 1 up to date", output.ToString(), StringComparison.Ordinal);

        output = new StringWriter();
        Assert.Equal(0, await AirlockCli.RunAsync(["images", "sync", "-f", file, "--check", "--output", "table"], new Hashtable(), output, error));
        var rows = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches("^STATUS +SOURCE +TARGET +DIGEST +ERROR$", rows[0]);
        Assert.StartsWith("up to date", Assert.Single(rows.Skip(1)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_repeats_passes_every_interval_until_cancelled()
    {
        var digest = await SeedAsync("app", "1", 1);
        var (config, _) = Parse($"version: 1\ndefaults:\n  interval: 50ms\nsync:\n- source: {Source}/app:1\n  target: {Target}/app:1\n  type: image\n");
        Assert.Equal(TimeSpan.FromMilliseconds(50), config.Interval);
        using var sync = new ImageSync(config, new RemoteOptions());
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var passes = new List<SyncStatus>();

        await sync.WatchAsync(false, null, results =>
        {
            passes.Add(Assert.Single(results).Status);
            if (passes.Count == 3)
            {
                stop.Cancel();
            }

            return Task.CompletedTask;
        }, stop.Token);

        Assert.Equal([SyncStatus.Copied, SyncStatus.UpToDate, SyncStatus.UpToDate], passes);
        Assert.Equal(digest, await DigestAtAsync($"{Target}/app:1"));
    }

    [Fact]
    public async Task The_watch_process_stops_on_SIGTERM_between_passes_with_exit_0()
    {
        // As regsync server under systemd: `systemctl stop` sends SIGTERM, which must end the loop cleanly (exit 0),
        // not kill the process with 143 — a unit with Restart=on-failure would start it again.
        var digest = await SeedAsync("app", "1", 1);
        var file = _temp.File("watch.yaml");
        File.WriteAllText(file, $"version: 1\ndefaults:\n  interval: 1h\nsync:\n- source: {Source}/app:1\n  target: {Target}/app:1\n  type: image\n");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "airlock.dll"), "images", "sync", "-f", file, "--watch", "--output", "json" })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["AIRLOCK_CONFIG"] = "/dev/null";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));

            // The first pass's results (a JSON array), then the process sleeps until the next interval.
            var pass = new StringBuilder();
            while (await process.StandardOutput.ReadLineAsync(wait.Token) is { } line)
            {
                pass.AppendLine(line);
                if (line == "]")
                {
                    break;
                }
            }

            var row = Assert.Single(JsonDocument.Parse(pass.ToString()).RootElement.EnumerateArray());
            Assert.Equal("Copied", row.GetProperty("status").GetString());
            Assert.Equal(digest, await DigestAtAsync($"{Target}/app:1"));
            Assert.False(process.HasExited);

            Assert.True(Signals.Send(process.Id, Signals.Terminate));
            await process.WaitForExitAsync(wait.Token);
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {await stderr}");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public async Task A_missing_source_fails_alone_and_the_other_entries_still_sync()
    {
        var digest = await SeedAsync("app", "1", 1);
        var (config, _) = Parse($"version: 1\nsync:\n- {{ source: {Source}/gone:1, target: {Target}/gone:1, type: image }}\n"
            + $"- {{ source: {Source}/gone, target: {Target}/gone, type: repository }}\n- {{ source: {Source}/app:1, target: {Target}/app:1, type: image }}\n");

        var results = await RunAsync(config);

        Assert.Equal(3, results.Count);
        Assert.Equal(SyncStatus.Copied, results.Single(r => r.Target == $"{Target}/app:1").Status);
        Assert.Equal(2, results.Count(r => r.Status == SyncStatus.Failed && r.Target.Contains("/gone", StringComparison.Ordinal)));
        Assert.All(results.Where(r => r.Status == SyncStatus.Failed), r => Assert.False(string.IsNullOrEmpty(r.Error)));
        Assert.Equal(digest, await DigestAtAsync($"{Target}/app:1"));
    }
}
