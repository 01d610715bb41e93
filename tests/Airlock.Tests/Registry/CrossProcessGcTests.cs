using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Airlock.Oci;
using Xunit.Abstractions;

namespace Airlock.Tests.Registry;

/// <summary>
/// <c>airlock registry gc</c> as its own process beside a running <c>airlock registry</c> on the same data
/// directory: both are the built binary, so the coordination under test is the cross-process one.
/// </summary>
public sealed class CrossProcessGcTests(ITestOutputHelper log)
{
    private static readonly TimeSpan LongAgo = TimeSpan.FromHours(2);

    [Fact]
    public async Task Gc_processes_beside_a_pushing_registry_never_break_a_push_nor_leave_a_tag_with_a_missing_blob()
    {
        var data = Directory.CreateTempSubdirectory("airlock-gc-x-").FullName;
        var port = CliRegistryTests.FreePort();
        var server = CliRegistryTests.StartCli(data, port);
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await CliRegistryTests.WaitReadyAsync(client);

            // Garbage a collection must remove even while pushes run: an untagged, deleted image and an orphan.
            var junk = TestImage.Create(Encoding.UTF8.GetBytes("junk layer"));
            await PushBlobAsync(client, "junk", junk.Config);
            await PushBlobAsync(client, "junk", junk.Layer);
            await PutManifestAsync(client, "junk", "old", junk.Manifest, expectCreated: true);
            using (var delete = await client.DeleteAsync($"/v2/junk/manifests/{junk.ManifestDigest}"))
            {
                Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
            }

            var orphan = Encoding.UTF8.GetBytes("an orphan nobody refers to");
            await PushBlobAsync(client, "junk", orphan);
            foreach (var digest in new[] { junk.LayerDigest, junk.ManifestDigest, Digest.Sha256(orphan) })
            {
                Backdate(BlobPath(data, digest));
                Backdate(LinkPath(data, "junk", digest), mustExist: false);
            }

            using var pushing = new CancellationTokenSource();
            var normal = Enumerable.Range(0, 2).Select(i => PushFreshImagesAsync(client, data, $"fresh/p{i}", slow: false, pushing.Token)).ToArray();

            // A "slow" push: its blobs look older than any grace by the time its manifest is put, so a
            // collection may delete them first; the put must then be refused, never accepted with a hole.
            var slow = PushFreshImagesAsync(client, data, "slow/p", slow: true, pushing.Token);

            var collections = 0;
            var deletedByCollections = 0;
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(25);
            while (DateTime.UtcNow < until || collections < 3)
            {
                var (code, output) = await RunGcAsync(data, "--gc-grace", "0s");
                Assert.True(code == 0, $"gc exited {code}: {output}");
                collections++;
                deletedByCollections += output.Split('\n').Count(l => l.StartsWith("removed blob ", StringComparison.Ordinal));
            }

            await pushing.CancelAsync();
            var normalCounts = await Task.WhenAll(normal);
            var (slowAccepted, slowRefused) = await slow;
            log.WriteLine($"{collections} collections removed {deletedByCollections} blobs; pushes accepted {string.Join(", ", normalCounts.Select(c => c.Accepted))}; slow pushes accepted {slowAccepted}, refused {slowRefused}");
            Assert.All(normalCounts, c => Assert.True(c.Accepted > 0 && c.Refused == 0, $"normal pushes: {c.Accepted} accepted, {c.Refused} refused"));
            Assert.True(slowAccepted + slowRefused > 0);

            Assert.False(File.Exists(BlobPath(data, Digest.Sha256(orphan))));
            Assert.False(File.Exists(BlobPath(data, junk.LayerDigest)));
            Assert.True(deletedByCollections >= 2, $"collections removed {deletedByCollections} blobs");

            // Every tag resolves, and every blob it needs is there with the right content.
            var tags = 0;
            using var catalog = JsonDocument.Parse(await client.GetStringAsync("/v2/_catalog"));
            foreach (var repository in catalog.RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()!))
            {
                using var list = JsonDocument.Parse(await client.GetStringAsync($"/v2/{repository}/tags/list"));
                if (list.RootElement.GetProperty("tags").ValueKind != JsonValueKind.Array)
                {
                    continue;
                }

                foreach (var tag in list.RootElement.GetProperty("tags").EnumerateArray())
                {
                    tags++;
                    var manifest = await client.GetByteArrayAsync($"/v2/{repository}/manifests/{tag.GetString()}");
                    foreach (var child in ManifestDocument.Parse(manifest, null).Children)
                    {
                        var blob = await client.GetByteArrayAsync($"/v2/{repository}/blobs/{child.Digest}");
                        Assert.Equal(child.Digest, Digest.Sha256(blob));
                    }
                }
            }

            Assert.True(tags >= normalCounts.Sum(c => c.Accepted) + slowAccepted, $"{tags} tags");
        }
        finally
        {
            await StopAsync(server);
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task A_second_collection_at_once_is_refused_with_a_clear_message()
    {
        var data = Directory.CreateTempSubdirectory("airlock-gc-two-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(data, "no-config.yaml"), string.Empty);
            var (code, output) = await RunGcAsync(data, "--dry-run");
            Assert.True(code == 0, output);

            // A collection in progress holds this lock (the same flock another airlock process takes).
            var lockPath = Path.Combine(data, "registry", "locks", "collector.lock");
            Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
            using (new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
            {
                (code, output) = await RunGcAsync(data, "--gc-grace", "0s");
                Assert.Equal(1, code);
                Assert.Contains("another garbage collection is running on", output, StringComparison.Ordinal);
            }

            (code, output) = await RunGcAsync(data, "--gc-grace", "0s");
            Assert.True(code == 0, output);

            // Two real processes started together: each one either collects or is refused with the message.
            for (var round = 0; round < 3; round++)
            {
                var both = await Task.WhenAll(RunGcAsync(data, "--gc-grace", "0s"), RunGcAsync(data, "--gc-grace", "0s"));
                Assert.All(both, r => Assert.True(r.Code == 0 || (r.Code == 1 && r.Output.Contains("another garbage collection is running", StringComparison.Ordinal)), r.Output));
                Assert.Contains(both, r => r.Code == 0);
            }
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task An_upload_session_in_progress_or_left_for_a_restart_survives_collections()
    {
        var data = Directory.CreateTempSubdirectory("airlock-gc-upload-").FullName;
        var port = CliRegistryTests.FreePort();
        var server = CliRegistryTests.StartCli(data, port);
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await CliRegistryTests.WaitReadyAsync(client);
            var blob = new byte[3 * 1024 * 1024];
            new Random(7).NextBytes(blob);
            var digest = Digest.Sha256(blob);
            var third = blob.Length / 3;

            // Paused between chunks a few minutes ago: younger than the upload floor, so kept at --gc-grace 0s.
            var paused = await StartSessionAsync(client, "app");
            await PatchAsync(client, paused, blob[..third]);
            var pausedDirectory = SessionDirectory(data, paused);
            Backdate(pausedDirectory, TimeSpan.FromMinutes(5));
            Backdate(Path.Combine(pausedDirectory, "data"), TimeSpan.FromMinutes(5));

            // A chunk being received right now into a session that looks idle for hours: kept because a
            // request holds it.
            var busy = await StartSessionAsync(client, "app");
            var release = new TaskCompletionSource();
            var firstPartSent = new TaskCompletionSource();
            var chunk = new GatedContent(blob[..third], blob[third..(2 * third)], firstPartSent, release.Task);
            var busyPatch = client.SendAsync(new HttpRequestMessage(HttpMethod.Patch, busy) { Content = chunk });
            await firstPartSent.Task;
            var busyDirectory = SessionDirectory(data, busy);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while ((!File.Exists(Path.Combine(busyDirectory, "data")) || new FileInfo(Path.Combine(busyDirectory, "data")).Length < third) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            Backdate(busyDirectory);
            Backdate(Path.Combine(busyDirectory, "data"));

            var (code, output) = await RunGcAsync(data, "--gc-grace", "0s");
            Assert.True(code == 0, output);
            Assert.DoesNotContain("removed upload", output, StringComparison.Ordinal);
            release.SetResult();
            using (var patched = await busyPatch)
            {
                Assert.Equal(HttpStatusCode.Accepted, patched.StatusCode);
            }

            await PatchAsync(client, busy, blob[(2 * third)..]);
            await FinishAsync(client, busy, digest, []);

            // The paused one is resumed after a restart, with a collection run while no registry served.
            await StopAsync(server);
            (code, output) = await RunGcAsync(data, "--gc-grace", "0s");
            Assert.True(code == 0, output);
            Assert.DoesNotContain("removed upload", output, StringComparison.Ordinal);
            server = CliRegistryTests.StartCli(data, port);
            await CliRegistryTests.WaitReadyAsync(client);
            await PatchAsync(client, paused, blob[third..(2 * third)]);
            await FinishAsync(client, paused, digest, blob[(2 * third)..]);
            Assert.Equal(blob, await client.GetByteArrayAsync($"/v2/app/blobs/{digest}"));
        }
        finally
        {
            await StopAsync(server);
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Abandoned_chunked_uploads_hold_no_open_files_and_a_collection_from_another_process_frees_their_space()
    {
        const int Sessions = 400;
        var data = Directory.CreateTempSubdirectory("airlock-gc-abandoned-").FullName;
        var port = CliRegistryTests.FreePort();
        var server = CliRegistryTests.StartCli(data, port);
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await CliRegistryTests.WaitReadyAsync(client);
            var uploads = Path.Combine(data, "registry", "uploads");
            var descriptorsBefore = OpenFiles(server.Id).Count;

            // One PATCH each, then never heard of again (a client that crashed or gave up).
            var chunk = new byte[64 * 1024];
            new Random(11).NextBytes(chunk);
            var sessions = new List<string>();
            for (var i = 0; i < Sessions; i++)
            {
                var location = await StartSessionAsync(client, "abandoned");
                await PatchAsync(client, location, chunk);
                sessions.Add(location);
            }

            var open = OpenFiles(server.Id);
            Assert.DoesNotContain(open, target => target.StartsWith(uploads, StringComparison.Ordinal));
            Assert.True(open.Count < descriptorsBefore + Sessions / 4, $"{open.Count} descriptors open after {Sessions} sessions, {descriptorsBefore} before");

            // A session resumed after its file was closed goes on where it stood.
            var blob = chunk.Concat(chunk).ToArray();
            await FinishAsync(client, sessions[0], Digest.Sha256(blob), chunk);
            Assert.Equal(blob, await client.GetByteArrayAsync($"/v2/abandoned/blobs/{Digest.Sha256(blob)}"));

            foreach (var location in sessions.Skip(1))
            {
                Backdate(Path.Combine(SessionDirectory(data, location), "data"));
                Backdate(SessionDirectory(data, location));
            }

            var (code, output) = await RunGcAsync(data, "--gc-grace", "0s");
            Assert.True(code == 0, output);
            Assert.Equal(Sessions - 1, output.Split('\n').Count(l => l.StartsWith("removed upload ", StringComparison.Ordinal)));
            Assert.Empty(Directory.EnumerateDirectories(uploads));

            // Deleted by another process: the server holds none of those files open, so their space is free.
            Assert.DoesNotContain(OpenFiles(server.Id), target => target.StartsWith(data, StringComparison.Ordinal) && target.EndsWith(" (deleted)", StringComparison.Ordinal));
            using (var gone = await client.PatchAsync(sessions[1], new ByteArrayContent(chunk)))
            {
                Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
            }

            await PushBlobAsync(client, "abandoned", chunk, chunked: true);
        }
        finally
        {
            await StopAsync(server);
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>What the process's file descriptors point at (<c>/proc/PID/fd</c>).</summary>
    private static List<string> OpenFiles(int pid)
    {
        var targets = new List<string>();
        foreach (var descriptor in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            try
            {
                if (new FileInfo(descriptor).LinkTarget is { } target)
                {
                    targets.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed while listed.
            }
        }

        return targets;
    }

    /// <summary>Pushes fresh images until cancelled; counts manifests accepted and refused (MANIFEST_BLOB_UNKNOWN).</summary>
    private static async Task<(int Accepted, int Refused)> PushFreshImagesAsync(HttpClient client, string data, string repository, bool slow, CancellationToken cancellationToken)
    {
        var random = new Random(repository.GetHashCode(StringComparison.Ordinal));
        int accepted = 0, refused = 0;
        for (var round = 0; !cancellationToken.IsCancellationRequested; round++)
        {
            var layer = new byte[32 * 1024 + random.Next(32 * 1024)];
            random.NextBytes(layer);
            var image = TestImage.Create(layer);
            // The slow pusher uploads in one request: an open session would protect its repository's links.
            await PushBlobAsync(client, repository, image.Config, chunked: !slow && round % 2 == 0);
            await PushBlobAsync(client, repository, image.Layer, chunked: !slow && round % 2 == 1);
            if (slow)
            {
                // A collection may already have removed them.
                Backdate(BlobPath(data, image.LayerDigest), mustExist: false);
                Backdate(LinkPath(data, repository, image.LayerDigest), mustExist: false);
                await Task.Delay(random.Next(400), CancellationToken.None);
            }

            if (await PutManifestAsync(client, repository, $"r{round}", image.Manifest, expectCreated: !slow))
            {
                accepted++;
            }
            else
            {
                refused++;
            }
        }

        return (accepted, refused);
    }

    internal static async Task PushBlobAsync(HttpClient client, string repository, byte[] blob, bool chunked = false)
    {
        var digest = Digest.Sha256(blob);
        if (!chunked)
        {
            using var single = await client.PostAsync($"/v2/{repository}/blobs/uploads/?digest={digest}", new ByteArrayContent(blob));
            Assert.True(single.StatusCode == HttpStatusCode.Created, $"monolithic push of {digest}: {(int)single.StatusCode} {await single.Content.ReadAsStringAsync()}");
            return;
        }

        var location = await StartSessionAsync(client, repository);
        await PatchAsync(client, location, blob[..(blob.Length / 2)]);
        await FinishAsync(client, location, digest, blob[(blob.Length / 2)..]);
    }

    private static async Task<string> StartSessionAsync(HttpClient client, string repository)
    {
        using var start = await client.PostAsync($"/v2/{repository}/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        return start.Headers.Location!.OriginalString;
    }

    private static async Task PatchAsync(HttpClient client, string location, byte[] chunk)
    {
        using var patch = await client.PatchAsync(location, new ByteArrayContent(chunk));
        Assert.True(patch.StatusCode == HttpStatusCode.Accepted, $"PATCH {location}: {(int)patch.StatusCode} {await patch.Content.ReadAsStringAsync()}");
    }

    private static async Task FinishAsync(HttpClient client, string location, Digest digest, byte[] rest)
    {
        using var done = await client.PutAsync($"{location}?digest={digest}", new ByteArrayContent(rest));
        Assert.True(done.StatusCode == HttpStatusCode.Created, $"PUT {location}: {(int)done.StatusCode} {await done.Content.ReadAsStringAsync()}");
    }

    /// <summary>True when accepted; false when refused because a blob is unknown (only allowed when not <paramref name="expectCreated"/>).</summary>
    internal static async Task<bool> PutManifestAsync(HttpClient client, string repository, string tag, byte[] manifest, bool expectCreated)
    {
        using var content = new ByteArrayContent(manifest);
        content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.OciManifest);
        using var put = await client.PutAsync($"/v2/{repository}/manifests/{tag}", content);
        if (put.StatusCode == HttpStatusCode.Created)
        {
            return true;
        }

        var body = await put.Content.ReadAsStringAsync();
        Assert.False(expectCreated, $"manifest {repository}:{tag}: {(int)put.StatusCode} {body}");
        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        Assert.Contains("MANIFEST_BLOB_UNKNOWN", body, StringComparison.Ordinal);
        return false;
    }

    internal static async Task<(int Code, string Output)> RunGcAsync(string data, params string[] extra)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "airlock"))
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "registry", "gc", "--data-dir", data, "--config", Path.Combine(data, "no-config.yaml") }.Concat(extra))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    internal static async Task StopAsync(Process server)
    {
        if (!server.HasExited)
        {
            server.Kill();
            await server.WaitForExitAsync();
        }

        server.Dispose();
    }

    private static string BlobPath(string data, Digest digest) =>
        Path.Combine(data, "registry", "blobs", digest.Algorithm, digest.Encoded[..2], digest.Encoded);

    private static string LinkPath(string data, string repository, Digest digest) =>
        Path.Combine(data, "registry", "repositories", repository, "_layers", digest.Algorithm, digest.Encoded);

    private static string SessionDirectory(string data, string location) =>
        Path.Combine(data, "registry", "uploads", location[(location.LastIndexOf('/') + 1)..]);

    private static void Backdate(string path, TimeSpan? age = null, bool mustExist = true)
    {
        var when = DateTime.UtcNow - (age ?? LongAgo);
        try
        {
            if (Directory.Exists(path))
            {
                Directory.SetLastWriteTimeUtc(path, when);
            }
            else
            {
                File.SetLastWriteTimeUtc(path, when);
            }
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException && !mustExist)
        {
        }
    }

    /// <summary>A request body sent in two parts, the second only once released.</summary>
    internal sealed class GatedContent(byte[] first, byte[] second, TaskCompletionSource firstSent, Task release) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(first);
            await stream.FlushAsync();
            firstSent.TrySetResult();
            await release;
            await stream.WriteAsync(second);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = first.Length + second.Length;
            return true;
        }
    }
}
