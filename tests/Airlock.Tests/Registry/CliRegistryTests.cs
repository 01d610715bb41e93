using System.Collections;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Airlock.Cli.Hosting;
using Airlock.Oci;

namespace Airlock.Tests.Registry;

public sealed class CliRegistryTests
{
    [Fact]
    public async Task Registry_gc_dry_run_lists_what_it_would_remove_and_removes_nothing()
    {
        var data = Directory.CreateTempSubdirectory("airlock-cli-gc-").FullName;
        try
        {
            Digest orphan;
            await using (var registry = await TestRegistry.StartAsync(dataDirectory: data))
            {
                await registry.PushImageAsync("app", "v1");
                orphan = await registry.PushBlobOkAsync("app", Encoding.UTF8.GetBytes("nobody refers to me"));
            }

            var (code, output) = await RunCliAsync("registry", "gc", "--data-dir", data, "--gc-grace", "0s", "--dry-run");
            Assert.Equal(0, code);
            Assert.Contains($"would remove blob {orphan}", output, StringComparison.Ordinal);
            Assert.Contains("would remove 1 blobs", output, StringComparison.Ordinal);

            (code, output) = await RunCliAsync("registry", "gc", "--data-dir", data, "--gc-grace", "0s", "--dry-run", "--output", "table");
            Assert.Equal(0, code);
            var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Matches("^ACTION +KIND +NAME$", rows[0]);
            Assert.Contains(rows, r => r.StartsWith("would remove  blob", StringComparison.Ordinal) && r.EndsWith(orphan.ToString(), StringComparison.Ordinal));

            (code, output) = await RunCliAsync("registry", "gc", "--data-dir", data, "--gc-grace", "0s", "--output", "json");
            Assert.Equal(0, code);
            using var json = JsonDocument.Parse(output);
            Assert.Equal(orphan.ToString(), json.RootElement.GetProperty("blobs")[0].GetString());
            Assert.False(File.Exists(Path.Combine(data, "registry", "blobs", "sha256", orphan.Encoded[..2], orphan.Encoded)));
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Registry_refuses_bad_flag_values_with_the_usage_exit_code()
    {
        var (code, _) = await RunCliAsync("registry", "--listen", "nowhere", "--gc-interval", "soon", "--data-dir", Path.GetTempPath());
        Assert.Equal(AirlockCli.ExitUsage, code);
    }

    [Theory]
    [InlineData("--gc-grace", "10", "--gc-grace \"10\" has no unit: add a unit, e.g. 10s")] // once read as 10 days
    [InlineData("--gc-interval", "24", "--gc-interval \"24\" has no unit: add a unit, e.g. 24s")]
    [InlineData("--proxy-tag-ttl", "5", "--proxy-tag-ttl \"5\" has no unit: add a unit, e.g. 5s")]
    [InlineData("--proxy-timeout", "10", "--proxy-timeout \"10\" has no unit: add a unit, e.g. 10s")]
    [InlineData("--proxy-timeout", "0", "--proxy-timeout \"0\" must be longer than 0")]
    [InlineData("--gc-grace", "-1h", "--gc-grace \"-1h\" is negative")]
    [InlineData("--gc-grace", "off", "--gc-grace \"off\" is not a duration")] // only --gc-interval can be off
    [InlineData("--gc-grace", "7d", "--gc-grace \"7d\" has an unknown unit \"d\"")]
    public async Task Registry_refuses_a_duration_flag_that_is_not_a_Go_duration_naming_flag_and_value(string flag, string value, string message)
    {
        var (code, error) = await RunCliAsync("registry", "--data-dir", Path.GetTempPath(), flag, value);

        Assert.Equal(AirlockCli.ExitUsage, code);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--tls-san", "registry.example", "--tls-san names the self-signed certificate's extra names; it needs --tls-self-signed")]
    [InlineData("--token-realm", "token", "--token-realm \"token\" is not an absolute URL")]
    [InlineData("--registries", "/dev/null", "--registries gives credentials for --proxy upstreams; it needs at least one --proxy")]
    [InlineData("--tls-cert", "/dev/null", "--tls-cert and --tls-key must be given together")]
    public async Task Registry_refuses_a_flag_that_would_not_take_effect_with_the_usage_exit_code(string flag, string value, string message)
    {
        var (code, error) = await RunCliAsync("registry", "--data-dir", Path.GetTempPath(), flag, value);

        Assert.Equal(AirlockCli.ExitUsage, code);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Registry_gc_refuses_a_bare_number_of_grace_instead_of_reading_it_as_days()
    {
        var data = Directory.CreateTempSubdirectory("airlock-gc-grace-").FullName;
        try
        {
            var (code, error) = await RunCliAsync("registry", "gc", "--data-dir", data, "--gc-grace", "10", "--dry-run");

            Assert.Equal(AirlockCli.ExitUsage, code);
            Assert.Contains("--gc-grace \"10\" has no unit: add a unit, e.g. 10s", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Registry_killed_during_concurrent_pushes_restarts_with_every_blob_intact_and_no_dangling_tag()
    {
        var data = Directory.CreateTempSubdirectory("airlock-kill9-").FullName;
        try
        {
            var port = FreePort();
            var first = StartCli(data, port);
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            try
            {
                await WaitReadyAsync(client);
                // The pushers end when the kill cuts them off (or, should the test fail first, at this deadline).
                using var pushing = new CancellationTokenSource(TimeSpan.FromMinutes(5));
                var pushed = new StrongBox<int>();
                var pushers = Enumerable.Range(0, 8).Select(i => PushUntilCancelledAsync(client, $"load/p{i}", pushed, pushing.Token)).ToArray();

                // Kill only once several images are complete, so the check after restart has something to check
                // however slow the machine; where the kill lands among the pushes in flight is the point.
                var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
                while (Volatile.Read(ref pushed.Value) < 4)
                {
                    Assert.True(DateTime.UtcNow < deadline, $"only {pushed.Value} images were pushed before the kill");
                    await Task.Delay(50);
                }

                first.Kill();
                await first.WaitForExitAsync();
                await Task.WhenAll(pushers);
            }
            finally
            {
                first.Dispose();
            }

            foreach (var file in Directory.EnumerateFiles(Path.Combine(data, "registry", "blobs"), "*", SearchOption.AllDirectories))
            {
                var name = Path.GetFileName(file);
                Assert.Equal(name, Digest.Sha256(await File.ReadAllBytesAsync(file)).Encoded);
            }

            var second = StartCli(data, port);
            try
            {
                await WaitReadyAsync(client);
                using var catalog = JsonDocument.Parse(await client.GetStringAsync("/v2/_catalog"));
                var repositories = catalog.RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()!).ToList();
                Assert.NotEmpty(repositories);
                foreach (var repository in repositories)
                {
                    using var tags = JsonDocument.Parse(await client.GetStringAsync($"/v2/{repository}/tags/list"));
                    foreach (var tag in tags.RootElement.GetProperty("tags").EnumerateArray())
                    {
                        var manifest = await client.GetByteArrayAsync($"/v2/{repository}/manifests/{tag.GetString()}");
                        foreach (var child in ManifestDocument.Parse(manifest, null).Children)
                        {
                            var blob = await client.GetByteArrayAsync($"/v2/{repository}/blobs/{child.Digest}");
                            Assert.Equal(child.Digest, Digest.Sha256(blob));
                        }
                    }
                }
            }
            finally
            {
                second.Kill();
                await second.WaitForExitAsync();
                second.Dispose();
            }
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static async Task PushUntilCancelledAsync(HttpClient client, string repository, StrongBox<int> pushed, CancellationToken cancellationToken)
    {
        var random = new Random(repository.GetHashCode(StringComparison.Ordinal));
        for (var round = 0; !cancellationToken.IsCancellationRequested; round++)
        {
            try
            {
                var layer = new byte[64 * 1024 + random.Next(64 * 1024)];
                random.NextBytes(layer);
                var image = TestImage.Create(layer);
                foreach (var blob in new[] { image.Config, image.Layer })
                {
                    using var start = await client.PostAsync($"/v2/{repository}/blobs/uploads/", null, cancellationToken);
                    Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
                    var location = start.Headers.Location!.OriginalString;
                    using var patch = new HttpRequestMessage(HttpMethod.Patch, location) { Content = new ByteArrayContent(blob[..(blob.Length / 2)]) };
                    (await client.SendAsync(patch, cancellationToken)).Dispose();
                    using var done = await client.PutAsync($"{location}?digest={Digest.Sha256(blob)}", new ByteArrayContent(blob[(blob.Length / 2)..]), cancellationToken);
                    Assert.Equal(HttpStatusCode.Created, done.StatusCode);
                }

                using var manifest = new ByteArrayContent(image.Manifest);
                manifest.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(MediaTypes.OciManifest);
                using var put = await client.PutAsync($"/v2/{repository}/manifests/r{round}", manifest, cancellationToken);
                Assert.Equal(HttpStatusCode.Created, put.StatusCode);
                Interlocked.Increment(ref pushed.Value);
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException or SocketException)
            {
                // The server was killed under us: that is the point. A kill between connect and the handler's
                // socket options surfaces as a bare SocketException rather than a wrapped one (seen once in CI).
                return;
            }
        }
    }

    /// <summary>
    /// Starts <c>airlock registry</c> on <paramref name="data"/>, under <paramref name="wrapper"/> (a command and its arguments,
    /// e.g. strace) when given, with <paramref name="extraArguments"/> and <paramref name="environment"/> added.
    /// </summary>
    internal static Process StartCli(string data, int port, IReadOnlyList<string>? wrapper = null, IEnumerable<string>? extraArguments = null, IReadOnlyDictionary<string, string>? environment = null, Action<string>? output = null)
    {
        var airlock = Path.Combine(AppContext.BaseDirectory, "airlock");
        var start = new ProcessStartInfo(wrapper is null ? airlock : wrapper[0])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var argument in wrapper is null ? [] : wrapper.Skip(1).Append(airlock))
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var argument in new[] { "registry", "--listen", $"127.0.0.1:{port}", "--data-dir", data, "--gc-interval", "off", "--config", Path.Combine(data, "no-config.yaml") }.Concat(extraArguments ?? []))
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        // An absent --config file given explicitly is an error; give an empty one.
        File.WriteAllText(Path.Combine(data, "no-config.yaml"), string.Empty);
        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, line) => Forward(line.Data);
        process.OutputDataReceived += (_, line) => Forward(line.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return process;

        void Forward(string? line)
        {
            if (line is not null)
            {
                output?.Invoke(line);
            }
        }
    }

    internal static async Task WaitReadyAsync(HttpClient client)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
        while (true)
        {
            try
            {
                using var response = await client.GetAsync("/v2/");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception ex) when ((ex is HttpRequestException or SocketException or IOException) && DateTime.UtcNow < deadline)
            {
            }

            await Task.Delay(100);
        }
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<(int Code, string Output)> RunCliAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await AirlockCli.RunAsync(args, new Hashtable { ["AIRLOCK_CONFIG"] = "/dev/null" }, output, error);
        return (code, output + error.ToString());
    }
}
