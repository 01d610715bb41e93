using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Airlock.Content.FileSystemStore;
using Airlock.Oci;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Airlock.Tests.Registry;

/// <summary>
/// The filesystem store's repository index across real processes (the built <c>airlock</c> binary): a registry killed
/// with SIGKILL in the middle of a write, and collections run by <c>airlock registry gc</c> beside a registry that
/// pushes and deletes. Afterwards the listings served equal the tree, and so does the index once it is reopened.
/// </summary>
public sealed class RepositoryIndexProcessTests(ITestOutputHelper log)
{
    [Fact]
    public async Task A_registry_killed_between_recording_a_tag_and_writing_it_leaves_an_index_the_next_start_repairs()
    {
        var data = Directory.CreateTempSubdirectory("airlock-index-kill-").FullName;
        var layout = new StoreLayout(data);
        var port = CliRegistryTests.FreePort();

        var heldTag = Path.Combine(layout.RepositoriesDirectory, "app", "_manifests", "tags", "v2");
        var image = TestImage.Create(Encoding.UTF8.GetBytes("a layer"));
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var server = CliRegistryTests.StartCli(data, port);
        try
        {
            await CliRegistryTests.WaitReadyAsync(client);
            await CrossProcessGcTests.PushBlobAsync(client, "app", image.Config);
            await CrossProcessGcTests.PushBlobAsync(client, "app", image.Layer);
            await CrossProcessGcTests.PutManifestAsync(client, "app", "v1", image.Manifest, expectCreated: true);
        }
        finally
        {
            await CrossProcessGcTests.StopAsync(server);
        }

        // Started again under strace, which holds the first write to the index journal for ten minutes once it is
        // done: the record of tag v2, which comes before the tag's file. Nothing else is slowed down.
        server = CliRegistryTests.StartCli(data, port, [
            "strace", "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "-P", layout.IndexJournal, "-e", "trace=write", "-e", "inject=write:delay_exit=600s"]);
        Process? restarted = null;
        int? tracee = null;
        try
        {
            await CliRegistryTests.WaitReadyAsync(client);
            tracee = TraceeOf(server);
            var held = CrossProcessGcTests.PutManifestAsync(client, "app", "v2", image.Manifest, expectCreated: true);

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!File.ReadAllText(layout.IndexJournal).Contains("+tapp:v2 ", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "the tag was never recorded in the index journal");
                Assert.False(held.IsCompleted, "the held write finished");
                await Task.Delay(20);
            }

            Assert.False(File.Exists(heldTag));
            // The registry first, then strace: the registry dies on its way back from the write it was held in (a
            // stopped tracee acts on its SIGKILL only once strace lets it go, which strace would do after its delay).
            Kill(tracee.Value);
            server.Kill();
            await server.WaitForExitAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => held);
            Assert.False(File.Exists(heldTag));

            restarted = CliRegistryTests.StartCli(data, port);
            await CliRegistryTests.WaitReadyAsync(client);
            Assert.Equal(["v1"], await ListAsync(client, "/v2/app/tags/list", "tags"));
            Assert.Equal(["app"], await ListAsync(client, "/v2/_catalog", "repositories"));
            await CrossProcessGcTests.StopAsync(restarted);
            restarted = null;
            await AssertIndexEqualsTreeAsync(data);
        }
        finally
        {
            // The traced registry first: strace's output pipes stay open while it lives.
            if (tracee is { } pid)
            {
                Kill(pid);
            }

            await CrossProcessGcTests.StopAsync(server);
            if (restarted is not null)
            {
                await CrossProcessGcTests.StopAsync(restarted);
            }

            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Collections_beside_a_registry_pushing_and_deleting_and_a_kill_in_the_middle_leave_listings_equal_to_the_tree()
    {
        var data = Directory.CreateTempSubdirectory("airlock-index-gc-").FullName;
        var port = CliRegistryTests.FreePort();
        var server = CliRegistryTests.StartCli(data, port);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        try
        {
            await CliRegistryTests.WaitReadyAsync(client);
            using var pushing = new CancellationTokenSource();
            var rounds = new int[4];
            var workers = Enumerable.Range(0, 4).Select(i => PushAndDeleteAsync(client, i, rounds, pushing.Token)).ToArray();

            // Collections from other processes while the pushes and deletions go on. Links look old to them (they
            // keep younger ones while a registry serves), so they remove the repositories the deletions emptied.
            var collections = 0;
            var removed = new List<string>();
            while (collections < 3 || rounds.Min() < 6)
            {
                BackdateLinks(data);
                var (code, output) = await CrossProcessGcTests.RunGcAsync(data, "--gc-grace", "0s");
                Assert.True(code == 0, $"gc exited {code}: {output}");
                removed.AddRange(RemovedRepositories(output));
                collections++;
                Assert.True(collections < 200, "the pushers made no progress");
            }

            // Killed while the workers still push and delete: whatever was in flight is cut short.
            server.Kill();
            await server.WaitForExitAsync();
            await pushing.CancelAsync();
            await Task.WhenAll(workers);
            log.WriteLine($"{collections} collections removed {removed.Count} repositories; rounds {string.Join(", ", rounds)}");

            var restarted = CliRegistryTests.StartCli(data, port);
            try
            {
                await CliRegistryTests.WaitReadyAsync(client);
                var tree = RepositoryIndex.ReadTree(new StoreLayout(data));
                var repositories = tree.Where(k => k[0] == 'r').Select(k => k[1..]).ToList();
                Assert.Equal(repositories, await WalkAsync(client, "/v2/_catalog?n=2", "repositories"));
                foreach (var repository in repositories)
                {
                    var tags = tree.Where(k => k.StartsWith("t" + repository + ":", StringComparison.Ordinal)).Select(k => k[(repository.Length + 2)..]).ToList();
                    Assert.Equal(tags, await WalkAsync(client, $"/v2/{repository}/tags/list?n=1", "tags"));
                }
            }
            finally
            {
                await CrossProcessGcTests.StopAsync(restarted);
            }

            // With nobody serving, a collection takes its grace as given and removes every repository left empty.
            var (finalCode, finalOutput) = await CrossProcessGcTests.RunGcAsync(data, "--gc-grace", "0s");
            Assert.True(finalCode == 0, finalOutput);
            var removedLast = RemovedRepositories(finalOutput);
            Assert.Contains(removed.Concat(removedLast), r => r.StartsWith("scratch/", StringComparison.Ordinal));
            await AssertIndexEqualsTreeAsync(data);
            Assert.DoesNotContain(RepositoryIndex.ReadTree(new StoreLayout(data)), k => removedLast.Contains(k[1..]));
        }
        finally
        {
            await CrossProcessGcTests.StopAsync(server);
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>
    /// Pushes images to a few repositories shared with the other workers, deletes tags and whole manifests (which
    /// leaves repositories empty for a collection to remove), until cancelled or the registry is gone.
    /// </summary>
    private static async Task PushAndDeleteAsync(HttpClient client, int worker, int[] rounds, CancellationToken cancellationToken)
    {
        var random = new Random(worker);
        try
        {
            for (var round = 0; !cancellationToken.IsCancellationRequested; round++)
            {
                // Two repositories every worker pushes to and deletes from, and one of its own it empties at once.
                var choice = random.Next(3);
                var repository = choice < 2 ? $"shared/r{choice}" : $"scratch/w{worker}-{round}";
                var image = TestImage.Create(Encoding.UTF8.GetBytes($"layer {worker} {round}"));
                await CrossProcessGcTests.PushBlobAsync(client, repository, image.Config);
                await CrossProcessGcTests.PushBlobAsync(client, repository, image.Layer);
                var tag = "w" + worker.ToString(CultureInfo.InvariantCulture) + "-" + random.Next(3).ToString(CultureInfo.InvariantCulture);

                // A collection may have removed a link just pushed: then the put is refused, which is fine.
                await CrossProcessGcTests.PutManifestAsync(client, repository, tag, image.Manifest, expectCreated: false);
                var deletion = choice == 2 ? 0 : random.Next(4);
                if (deletion < 2)
                {
                    using var deleted = await client.DeleteAsync(
                        deletion == 0 ? $"/v2/{repository}/manifests/{image.ManifestDigest}" : $"/v2/{repository}/manifests/{tag}", cancellationToken);
                }

                Interlocked.Increment(ref rounds[worker]);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException or SocketException)
        {
            // The registry was killed under the worker: that is the point.
        }
    }

    private static List<string> RemovedRepositories(string gcOutput) =>
        gcOutput.Split('\n').Where(l => l.StartsWith("removed repository ", StringComparison.Ordinal)).Select(l => l["removed repository ".Length..].Trim()).ToList();

    private static void BackdateLinks(string data)
    {
        var repositories = new StoreLayout(data).RepositoriesDirectory;
        var longAgo = DateTime.UtcNow - TimeSpan.FromHours(2);
        foreach (var link in Directory.EnumerateFiles(repositories, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
        {
            if (link.Contains("/_layers/", StringComparison.Ordinal))
            {
                try
                {
                    File.SetLastWriteTimeUtc(link, longAgo);
                }
                catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
                {
                    // Removed meanwhile by a collection.
                }
            }
        }
    }

    [Theory]
    [InlineData("killed in the middle of a write")]
    [InlineData("index missing")]
    [InlineData("index damaged")]
    public async Task An_authenticated_only_repository_stays_refused_to_anonymous_clients_across_a_restart(string what)
    {
        var data = Directory.CreateTempSubdirectory("airlock-index-marks-").FullName;
        var users = Directory.CreateTempSubdirectory("airlock-index-marks-users-").FullName;
        var layout = new StoreLayout(data);
        var port = CliRegistryTests.FreePort();
        var htpasswd = Path.Combine(users, "htpasswd");
        await File.WriteAllLinesAsync(htpasswd, [$"alice:{BCrypt.Net.BCrypt.HashPassword("wonderland", 4)}"]);
        string[] auth = ["--htpasswd", htpasswd, "--anonymous-pull"];
        var image = TestImage.Create(Encoding.UTF8.GetBytes("a layer"));

        // What the pull-through cache leaves for a private upstream's image: the mark first, then the content.
        await using (var store = FileSystemRegistryStore.Open(data, TimeProvider.System, NullLogger.Instance))
        {
            await store.Repositories.MarkAuthenticatedOnlyAsync("private/app", CancellationToken.None);
        }

        using var alice = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        alice.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:wonderland")));
        using var anonymous = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        Process? server = CliRegistryTests.StartCli(data, port, extraArguments: auth);
        Process? restarted = null;
        int? tracee = null;
        try
        {
            await CliRegistryTests.WaitReadyAsync(alice);
            foreach (var repository in new[] { "private/app", "public/app" })
            {
                await CrossProcessGcTests.PushBlobAsync(alice, repository, image.Config);
                await CrossProcessGcTests.PushBlobAsync(alice, repository, image.Layer);
                await CrossProcessGcTests.PutManifestAsync(alice, repository, "v1", image.Manifest, expectCreated: true);
            }

            await AssertRefusedToAnonymousAsync();

            // Stopped cleanly (SIGTERM): only what the test does next is there for the next start to find.
            using (var term = Process.Start("kill", ["-TERM", server.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync();
            }

            await server.WaitForExitAsync();
            await CrossProcessGcTests.StopAsync(server);
            server = null;
            Assert.Empty(Directory.GetFiles(layout.IndexSessionsDirectory));
            if (what == "killed in the middle of a write")
            {
                // Held after its first write to the index journal (the record of tag v2, before the tag's file), then
                // killed: the next start finds the session it left and rebuilds the index from the tree.
                server = CliRegistryTests.StartCli(data, port, [
                    "strace", "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "-P", layout.IndexJournal, "-e", "trace=write", "-e", "inject=write:delay_exit=600s"],
                    auth);
                await CliRegistryTests.WaitReadyAsync(alice);
                tracee = TraceeOf(server);
                var held = CrossProcessGcTests.PutManifestAsync(alice, "public/app", "v2", image.Manifest, expectCreated: true);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (!File.ReadAllText(layout.IndexJournal).Contains("+tpublic/app:v2 ", StringComparison.Ordinal))
                {
                    Assert.True(DateTime.UtcNow < deadline, "the tag was never recorded in the index journal");
                    await Task.Delay(20);
                }

                Kill(tracee.Value);
                server.Kill();
                await server.WaitForExitAsync();
                await Assert.ThrowsAnyAsync<Exception>(() => held);
                await CrossProcessGcTests.StopAsync(server);
                server = null;
            }
            else if (what == "index missing")
            {
                Directory.Delete(layout.IndexDirectory, recursive: true);
            }
            else
            {
                var snapshot = File.ReadAllBytes(layout.IndexSnapshot);
                snapshot[snapshot.Length / 2] ^= 0x01;
                File.WriteAllBytes(layout.IndexSnapshot, snapshot);
            }

            restarted = CliRegistryTests.StartCli(data, port, extraArguments: auth);
            await CliRegistryTests.WaitReadyAsync(alice);
            await AssertRefusedToAnonymousAsync();
            await CrossProcessGcTests.StopAsync(restarted);
            restarted = null;
            await AssertIndexEqualsTreeAsync(data);
        }
        finally
        {
            if (tracee is { } pid)
            {
                Kill(pid);
            }

            if (server is not null)
            {
                await CrossProcessGcTests.StopAsync(server);
            }

            if (restarted is not null)
            {
                await CrossProcessGcTests.StopAsync(restarted);
            }

            Directory.Delete(data, recursive: true);
            Directory.Delete(users, recursive: true);
        }

        async Task AssertRefusedToAnonymousAsync()
        {
            using (var refused = await anonymous.GetAsync("/v2/private/app/tags/list"))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }

            using (var refused = await anonymous.GetAsync($"/v2/private/app/manifests/v1"))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            }

            Assert.Equal(["v1"], await ListAsync(anonymous, "/v2/public/app/tags/list", "tags"));
            Assert.Equal(["public/app"], await ListAsync(anonymous, "/v2/_catalog", "repositories"));
            Assert.Equal(["private/app", "public/app"], await ListAsync(alice, "/v2/_catalog", "repositories"));
        }
    }

    /// <summary>The process strace started (its only child).</summary>
    private static int TraceeOf(Process strace) =>
        int.Parse(Assert.Single(File.ReadAllText($"/proc/{strace.Id}/task/{strace.Id}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries)), CultureInfo.InvariantCulture);

    /// <summary>
    /// SIGKILL; nothing when it is gone already. Not waited for: it stays a zombie until strace, its parent, reaps it,
    /// which strace does only after its delay unless it is killed too.
    /// </summary>
    private static void Kill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (ArgumentException)
        {
            // Not running.
        }
    }

    private static async Task AssertIndexEqualsTreeAsync(string data)
    {
        await using var store = FileSystemRegistryStore.Open(data, TimeProvider.System, NullLogger.Instance);
        Assert.Equal(RepositoryIndex.ReadTree(new StoreLayout(data)), await store.Index.ReadKeysAsync(CancellationToken.None));
    }

    private static async Task<List<string>> ListAsync(HttpClient client, string path, string property)
    {
        using var document = JsonDocument.Parse(await client.GetStringAsync(path));
        return document.RootElement.GetProperty(property) is { ValueKind: JsonValueKind.Array } names ? names.EnumerateArray().Select(e => e.GetString()!).ToList() : [];
    }

    /// <summary>Every name of a listing, following the Link headers from <paramref name="path"/>.</summary>
    private static async Task<List<string>> WalkAsync(HttpClient client, string path, string property)
    {
        var names = new List<string>();
        string? next = path;
        while (next is not null)
        {
            using var response = await client.GetAsync(next);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            if (document.RootElement.GetProperty(property) is { ValueKind: JsonValueKind.Array } page)
            {
                names.AddRange(page.EnumerateArray().Select(e => e.GetString()!));
            }

            next = response.Headers.TryGetValues("Link", out var links) ? links.Single().Split('<', '>')[1] : null;
        }

        return names;
    }
}
