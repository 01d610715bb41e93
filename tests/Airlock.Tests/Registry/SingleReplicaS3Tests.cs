using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Airlock.Oci;
using Airlock.Testing;
using Airlock.Tests.Content;

namespace Airlock.Tests.Registry;

/// <summary>
/// <c>airlock registry --storage s3://…</c> without <c>--metadata</c>, as real processes against a real radosgw: a single
/// replica with its metadata in the data directory, which says so at start, refuses a second process on the directory,
/// and after a <c>kill -9</c> in the middle of pushes restarts with everything it acknowledged.
/// </summary>
[Collection(CephEtcdCollection.Name)]
public sealed class SingleReplicaS3Tests(CephEtcd engines) : IDisposable
{
    private readonly string _prefix = "s-" + Guid.NewGuid().ToString("N")[..12];
    private readonly string _data = Directory.CreateTempSubdirectory("airlock-single-replica-").FullName;
    private readonly List<Process> _processes = [];

    private Dictionary<string, string> Credentials => new() { ["AWS_ACCESS_KEY_ID"] = CephEtcd.AccessKey, ["AWS_SECRET_ACCESS_KEY"] = CephEtcd.SecretKey };

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                Signals.Send(process.Id, Signals.Kill);
                process.WaitForExit();
            }

            process.Dispose();
        }

        Directory.Delete(_data, recursive: true);
    }

    private (Process Process, Output Output) Start(int port)
    {
        var output = new Output();
        var process = CliRegistryTests.StartCli(_data, port, extraArguments: ["--storage", engines.StorageUrl(_prefix)], environment: Credentials, output: output.Add);
        _processes.Add(process);
        return (process, output);
    }

    [Fact]
    public async Task Without_metadata_the_registry_says_it_is_a_single_replica_and_refuses_a_second_process()
    {
        var port = CliRegistryTests.FreePort();
        var (_, output) = Start(port);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await CliRegistryTests.WaitReadyAsync(client);
        var warning = await output.WaitForAsync(line => line.Contains("single replica", StringComparison.Ordinal));
        Assert.Contains(Path.Combine(_data, "s3-metadata"), warning, StringComparison.Ordinal);
        Assert.Contains("--metadata etcd://", warning, StringComparison.Ordinal);

        var image = ScaleOutRegistryTests.Image("one replica");
        await ScaleOutRegistryTests.PushImageAsync(client, "team/app", "v1", image);
        Assert.Equal(image.Layer, await client.GetByteArrayAsync($"/v2/team/app/blobs/{Digest.Sha256(image.Layer)}"));

        // The same data directory for a second registry: refused at start, naming the holder and how to run replicas.
        var (second, refusal) = Start(CliRegistryTests.FreePort());
        await second.WaitForExitAsync();
        Assert.Equal(1, second.ExitCode);
        var reason = refusal.Lines.Single(line => line.Contains("in use by another airlock process", StringComparison.Ordinal));
        Assert.Contains("--metadata etcd://", reason, StringComparison.Ordinal);

        // So is an offline collection while the registry serves; the first one is unharmed.
        var gc = await RunGcAsync();
        Assert.Equal(1, gc.ExitCode);
        Assert.Contains("in use by another airlock process", gc.Error, StringComparison.Ordinal);
        Assert.Equal(image.Config, await client.GetByteArrayAsync($"/v2/team/app/blobs/{Digest.Sha256(image.Config)}"));
    }

    [Fact]
    public async Task A_registry_killed_during_pushes_restarts_with_everything_it_acknowledged_and_collects_afterwards()
    {
        var port = CliRegistryTests.FreePort();
        var (victim, _) = Start(port);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await CliRegistryTests.WaitReadyAsync(client);
        var done = await ScaleOutRegistryTests.PushUntilKilledAsync(client, "killed", victim.Id);
        await victim.WaitForExitAsync();

        // Restarted on the same data directory: every acknowledged push is there whole, no tag points at something missing.
        var (restarted, _) = Start(port);
        await CliRegistryTests.WaitReadyAsync(client);
        await AssertServedAsync(client, done);
        var after = ScaleOutRegistryTests.Image("after the restart");
        await ScaleOutRegistryTests.PushImageAsync(client, "killed", "after", after);

        // Stopped cleanly, collected offline (the blobs of the push the kill cut short may go), started again: nothing tagged is lost.
        Signals.Send(restarted.Id, Signals.Terminate);
        await restarted.WaitForExitAsync();
        var gc = await RunGcAsync();
        Assert.True(gc.ExitCode == 0, gc.Error);
        Start(port);
        await CliRegistryTests.WaitReadyAsync(client);
        await AssertServedAsync(client, done);
        using var manifest = await GetManifestAsync(client, "killed", "after");
        Assert.Equal(after.Manifest, await manifest.Content.ReadAsByteArrayAsync());
    }

    private static async Task AssertServedAsync(HttpClient client, int[] acknowledged)
    {
        Assert.True(acknowledged.Length >= 6);
        var tags = await client.GetStringAsync("/v2/killed/tags/list");
        foreach (var i in Enumerable.Range(0, acknowledged.Max() + 2))
        {
            if (!acknowledged.Contains(i) && !tags.Contains($"\"t{i}\"", StringComparison.Ordinal))
            {
                continue;
            }

            var image = ScaleOutRegistryTests.Image($"killed {i}");
            using var manifest = await GetManifestAsync(client, "killed", $"t{i}");
            Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
            Assert.Equal(image.Manifest, await manifest.Content.ReadAsByteArrayAsync());
            Assert.Equal(image.Layer, await client.GetByteArrayAsync($"/v2/killed/blobs/{Digest.Sha256(image.Layer)}"));
            Assert.Equal(image.Config, await client.GetByteArrayAsync($"/v2/killed/blobs/{Digest.Sha256(image.Config)}"));
        }
    }

    private async Task<(int ExitCode, string Error)> RunGcAsync()
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "airlock")) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in new[] { "registry", "gc", "--data-dir", _data, "--storage", engines.StorageUrl(_prefix), "--gc-grace", "0s", "--config", Path.Combine(_data, "no-config.yaml") })
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in Credentials)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await error + await output);
    }

    private static Task<HttpResponseMessage> GetManifestAsync(HttpClient client, string repository, string reference)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/{repository}/manifests/{reference}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        return client.SendAsync(request);
    }

    /// <summary>What a process printed, line by line, with a wait for the first line that matches.</summary>
    private sealed class Output
    {
        private readonly List<string> _lines = [];
        private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _waiting = [];

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public void Add(string line)
        {
            lock (_lines)
            {
                _lines.Add(line);
                foreach (var waiter in _waiting.Where(w => w.Match(line)).ToList())
                {
                    waiter.Found.TrySetResult(line);
                    _waiting.Remove(waiter);
                }
            }
        }

        public Task<string> WaitForAsync(Func<string, bool> match)
        {
            lock (_lines)
            {
                if (_lines.FirstOrDefault(match) is { } found)
                {
                    return Task.FromResult(found);
                }

                var waiter = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Add((match, waiter));
                return waiter.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
    }
}
