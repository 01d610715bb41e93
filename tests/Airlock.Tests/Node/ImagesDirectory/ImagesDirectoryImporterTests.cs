using System.Collections;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Cli.Hosting;
using Airlock.Node.Containerd;
using Airlock.Node.ImagesDirectory;
using Airlock.Remote;
using Airlock.Tests.Node.Containerd;
using Microsoft.Extensions.Logging;
using TestImage = Airlock.Tests.Node.Containerd.TestImage;
using TestRegistry = Airlock.Tests.Registry.TestRegistry;

namespace Airlock.Tests.Node.ImagesDirectory;

/// <summary>The air-gap images directory imported into a real containerd, checked with containerd's own ctr.</summary>
public sealed class ImagesDirectoryImporterTests(ContainerdProcess daemon) : IClassFixture<ContainerdProcess>, IDisposable
{
    private static readonly TestImage Image = TestImage.Build();

    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-images-dir-").FullName;
    private readonly string _scratch = Directory.CreateTempSubdirectory("airlock-images-scratch-").FullName;
    private readonly RecordingLogger _logger = new();

    public void Dispose()
    {
        Directory.Delete(_directory, recursive: true);
        Directory.Delete(_scratch, recursive: true);
    }

    [Fact]
    public async Task Archives_in_every_format_are_imported_pinned_and_runnable_and_corrupt_files_are_reported_by_name_without_stopping_the_rest()
    {
        await WriteArchiveAsync(Path.Combine(_directory, "docker.tar"), ArchiveFormat.DockerArchive, ArchiveCompression.None, "registry.airlock.test/dir/docker:1");
        await WriteArchiveAsync(Path.Combine(_directory, "oci.tar.gz"), ArchiveFormat.OciLayout, ArchiveCompression.Gzip, "registry.airlock.test/dir/oci-gzip:1");
        await WriteArchiveAsync(Path.Combine(_directory, "zstd.tar.zst"), ArchiveFormat.DockerArchive, ArchiveCompression.Zstd, "registry.airlock.test/dir/docker-zstd:1");
        var bad = Directory.CreateDirectory(Path.Combine(_directory, "bad")).FullName;
        var corrupt = Path.Combine(bad, "corrupt.tar.gz");
        await WriteArchiveAsync(corrupt, ArchiveFormat.OciLayout, ArchiveCompression.Gzip, "registry.airlock.test/dir/corrupt:1");
        CorruptMiddle(corrupt);
        var truncated = Path.Combine(bad, "truncated.tar.zst");
        await WriteArchiveAsync(truncated, ArchiveFormat.OciLayout, ArchiveCompression.Zstd, "registry.airlock.test/dir/truncated:1");
        Truncate(truncated);
        var badList = Path.Combine(bad, "list.txt");
        await File.WriteAllTextAsync(badList, "# comment\n\nNot A Reference!!\n");
        await File.WriteAllTextAsync(Path.Combine(_directory, "ignored.TAR"), "upper-case extensions are not K3s's");
        await using var client = daemon.Connect();

        var results = await Importer(client).ImportAsync(CancellationToken.None);

        Assert.Equal(6, results.Count);
        Assert.DoesNotContain(results, r => r.File.EndsWith("ignored.TAR", StringComparison.Ordinal));
        foreach (var (file, name) in new[]
                 {
                     ("docker.tar", "registry.airlock.test/dir/docker:1"), ("oci.tar.gz", "registry.airlock.test/dir/oci-gzip:1"),
                     ("zstd.tar.zst", "registry.airlock.test/dir/docker-zstd:1"),
                 })
        {
            var result = Assert.Single(results, r => r.File == Path.Combine(_directory, file));
            Assert.Equal(ImageFileStatus.Imported, result.Status);
            Assert.Equal([name], result.Images);
            var record = await client.Images.GetAsync(name, CancellationToken.None);
            Assert.NotNull(record);
            Assert.Equal("pinned", record.Labels["io.cattle.k3s.pinned"]);
            Assert.Equal("pinned", record.Labels["io.cri-containerd.pinned"]);
        }

        // The OCI archive kept every platform of the index.
        Assert.Equal(Image.Index.Digest, (await client.Images.GetAsync("registry.airlock.test/dir/oci-gzip:1", CancellationToken.None))!.Target.Digest);
        var (exit, output) = await daemon.CtrAsync(["run", "--rm", "registry.airlock.test/dir/docker-zstd:1", "airlock-dir-1"]);
        Assert.True(exit == 0, output);
        Assert.Equal(TestImage.Greeting, output.Trim());
        (exit, output) = await daemon.CtrAsync(["run", "--rm", "registry.airlock.test/dir/oci-gzip:1", "airlock-dir-2"]);
        Assert.True(exit == 0, output);
        Assert.Equal(TestImage.Greeting, output.Trim());

        foreach (var file in new[] { corrupt, truncated, badList })
        {
            var result = Assert.Single(results, r => r.File == file);
            Assert.Equal(ImageFileStatus.Failed, result.Status);
            Assert.False(string.IsNullOrEmpty(result.Error));
            Assert.Contains(_logger.Entries, e => e.Level >= LogLevel.Warning && Equals(e.Fields.GetValueOrDefault("File"), file));
        }

        Assert.Contains(Path.GetFileName(corrupt), Assert.Single(results, r => r.File == corrupt).Error, StringComparison.Ordinal);
        Assert.Contains("line 3", Assert.Single(results, r => r.File == badList).Error, StringComparison.Ordinal);
        Assert.Null(await client.Images.GetAsync("registry.airlock.test/dir/corrupt:1", CancellationToken.None));
        Assert.Null(await client.Images.GetAsync("registry.airlock.test/dir/truncated:1", CancellationToken.None));
    }

    [Fact]
    public async Task A_second_pass_skips_files_the_cache_records_as_unchanged_and_imports_changed_ones_again()
    {
        const string name = "registry.airlock.test/dir/cached:1";
        var archive = Path.Combine(_directory, "cached.tar.gz");
        await WriteArchiveAsync(archive, ArchiveFormat.OciLayout, ArchiveCompression.Gzip, name);
        await File.WriteAllTextAsync(Path.Combine(_directory, "broken.tar"), "not a tar at all");
        // Opted in as K3s users do: an empty .cache.json.
        await File.WriteAllTextAsync(Path.Combine(_directory, ".cache.json"), string.Empty);
        await using var client = daemon.Connect();
        var importer = Importer(client);

        var first = await importer.ImportAsync(CancellationToken.None);
        Assert.Equal(ImageFileStatus.Imported, Assert.Single(first, r => r.File == archive).Status);
        using (var written = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_directory, ".cache.json"))))
        {
            // K3s's field names: absolute path → size, modTime (RFC 3339, UTC "Z"), images.
            var entry = written.RootElement.GetProperty(archive);
            Assert.Equal(new FileInfo(archive).Length, entry.GetProperty("size").GetInt64());
            Assert.EndsWith("Z", entry.GetProperty("modTime").GetString(), StringComparison.Ordinal);
            Assert.Equal(name, Assert.Single(entry.GetProperty("images").EnumerateArray()).GetString());
        }

        Assert.True(await client.Images.DeleteAsync(name, CancellationToken.None));

        // A new importer (the agent restarted) reads the file and skips the unchanged archive too.
        var second = await Importer(client).ImportAsync(CancellationToken.None);
        var skipped = Assert.Single(second, r => r.File == archive);
        Assert.Equal(ImageFileStatus.Unchanged, skipped.Status);
        Assert.Equal([name], skipped.Images);
        // Not read again: the record deleted above stays deleted. A failed file is never cached.
        Assert.Null(await client.Images.GetAsync(name, CancellationToken.None));
        Assert.Equal(ImageFileStatus.Failed, Assert.Single(second, r => r.File.EndsWith("broken.tar", StringComparison.Ordinal)).Status);

        File.SetLastWriteTimeUtc(archive, DateTime.UtcNow.AddMinutes(1));
        var third = await importer.ImportAsync(CancellationToken.None);
        Assert.Equal(ImageFileStatus.Imported, Assert.Single(third, r => r.File == archive).Status);
        Assert.NotNull(await client.Images.GetAsync(name, CancellationToken.None));
    }

    [Fact]
    public async Task Without_a_cache_file_none_is_created_and_a_restart_imports_again_while_a_K3s_written_cache_is_honoured()
    {
        const string name = "registry.airlock.test/dir/uncached:1";
        var archive = Path.Combine(_directory, "uncached.tar");
        await WriteArchiveAsync(archive, ArchiveFormat.OciLayout, ArchiveCompression.None, name);
        await using var client = daemon.Connect();
        var importer = Importer(client);

        Assert.Equal(ImageFileStatus.Imported, Assert.Single(await importer.ImportAsync(CancellationToken.None)).Status);
        // Within one run the watcher's passes skip it; the next start imports it again (K3s without .cache.json).
        Assert.Equal(ImageFileStatus.Unchanged, Assert.Single(await importer.ImportAsync(CancellationToken.None)).Status);
        Assert.False(File.Exists(Path.Combine(_directory, ".cache.json")));
        Assert.Equal(ImageFileStatus.Imported, Assert.Single(await Importer(client).ImportAsync(CancellationToken.None)).Status);

        // A cache as K3s writes it: Go's time.Time with nanoseconds.
        var info = new FileInfo(archive);
        var modTime = info.LastWriteTimeUtc.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", System.Globalization.CultureInfo.InvariantCulture) + "00Z";
        await File.WriteAllTextAsync(Path.Combine(_directory, ".cache.json"),
            $"{{\n  \"{archive}\": {{\n    \"size\": {info.Length},\n    \"modTime\": \"{modTime}\",\n    \"images\": [\"{name}\"]\n  }}\n}}\n");
        var skipped = Assert.Single(await Importer(client).ImportAsync(CancellationToken.None));
        Assert.Equal(ImageFileStatus.Unchanged, skipped.Status);
        Assert.Equal([name], skipped.Images);
    }

    [Fact]
    public async Task A_txt_list_is_pulled_from_the_registry_into_containerd_pinned()
    {
        await using var registry = await TestRegistry.StartAsync();
        var name = $"{registry.Server.Address.Authority}/listed/hello:1";
        var pushTarget = RemoteImageStore.Create(Airlock.Oci.ImageReference.Parse(name), new RemoteOptions());
        await using (pushTarget)
        {
            await ImageGraph.CopyAsync(Image, pushTarget, Image.Index, new CopyOptions { Reference = "1" }, null, CancellationToken.None);
        }

        var list = Path.Combine(Directory.CreateDirectory(Path.Combine(_directory, "lists")).FullName, "images.txt");
        await File.WriteAllTextAsync(list, $"# images for the cluster\n\n  {name}  \n");
        await using var client = daemon.Connect();

        var results = await Importer(client).ImportAsync(CancellationToken.None);

        var result = Assert.Single(results);
        Assert.Equal(ImageFileStatus.Imported, result.Status);
        Assert.Equal([name], result.Images);
        Assert.Contains(_logger.Entries, e => e.Level == LogLevel.Information && Equals(e.Fields.GetValueOrDefault("Image"), name)
            && Equals(e.Fields.GetValueOrDefault("{OriginalFormat}"), "Pulled {Image} listed in {File}"));
        var record = await client.Images.GetAsync(name, CancellationToken.None);
        Assert.Equal(Image.Index.Digest, record!.Target.Digest);
        Assert.Equal("pinned", record.Labels["io.cattle.k3s.pinned"]);
        var (exit, output) = await daemon.CtrAsync(["run", "--rm", name, "airlock-dir-txt"]);
        Assert.True(exit == 0, output);
        Assert.Equal(TestImage.Greeting, output.Trim());
    }

    [Fact]
    public async Task Ready_is_sent_only_after_the_directory_is_processed_and_a_file_dropped_in_later_is_imported_by_the_watcher()
    {
        const string early = "registry.airlock.test/dir/at-start:1";
        const string late = "registry.airlock.test/dir/dropped-in:1";
        await WriteArchiveAsync(Path.Combine(_directory, "start.tar.zst"), ArchiveFormat.OciLayout, ArchiveCompression.Zstd, early);
        var socketPath = Path.Combine(_scratch, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(socketPath));
        await using var client = daemon.Connect();
        var passes = new List<IReadOnlyList<ImageFileResult>>();
        var agent = new ImagesDirectoryAgent(client, Options(), new SystemdNotifier(socketPath), TimeProvider.System)
        {
            Debounce = TimeSpan.FromMilliseconds(300),
            Imported = results => { lock (passes) { passes.Add(results); } },
        };
        using var stop = new CancellationTokenSource();
        var running = agent.RunAsync(stop.Token);

        var buffer = new byte[256];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = await notify.ReceiveAsync(buffer, SocketFlags.None, wait.Token);
        Assert.Equal("READY=1", Encoding.UTF8.GetString(buffer, 0, received));
        lock (passes)
        {
            Assert.Equal(ImageFileStatus.Imported, Assert.Single(Assert.Single(passes)).Status);
        }

        Assert.NotNull(await client.Images.GetAsync(early, CancellationToken.None));

        // Written elsewhere and moved in, as an operator copying an archive would do it.
        var staged = Path.Combine(_scratch, "late.tar.gz");
        await WriteArchiveAsync(staged, ArchiveFormat.DockerArchive, ArchiveCompression.Gzip, late);
        Directory.CreateDirectory(Path.Combine(_directory, "later"));
        File.Move(staged, Path.Combine(_directory, "later", "late.tar.gz"));
        bool LateImported()
        {
            lock (passes)
            {
                return passes.Skip(1).SelectMany(p => p).Any(r => r.Status == ImageFileStatus.Imported && r.Images.Contains(late));
            }
        }

        while (!LateImported())
        {
            await Task.Delay(100, wait.Token);
        }

        Assert.NotNull(await client.Images.GetAsync(late, CancellationToken.None));

        await stop.CancelAsync();
        await running;
        received = await notify.ReceiveAsync(buffer, SocketFlags.None, wait.Token);
        Assert.Equal("STOPPING=1", Encoding.UTF8.GetString(buffer, 0, received));
    }

    [Fact]
    public async Task The_agent_command_with_watch_false_imports_the_directory_once_and_exits_0()
    {
        const string name = "registry.airlock.test/dir/cli:1";
        var images = Path.Combine(_scratch, "data", "agent", "images");
        Directory.CreateDirectory(images);
        await WriteArchiveAsync(Path.Combine(images, "cli.tgz"), ArchiveFormat.OciLayout, ArchiveCompression.Gzip, name);
        var output = new StringWriter();
        var error = new StringWriter();

        // --images-dir defaults to <data-dir>/agent/images.
        await File.WriteAllTextAsync(Path.Combine(images, ".cache.json"), string.Empty);
        var code = await AirlockCli.RunAsync(
            ["agent", "--data-dir", Path.Combine(_scratch, "data"), "--containerd-socket", daemon.Address, "--watch", "false"],
            new Hashtable(), output, error);

        Assert.True(code == 0, error.ToString());
        await using var client = daemon.Connect();
        Assert.Equal("pinned", (await client.Images.GetAsync(name, CancellationToken.None))!.Labels["io.cattle.k3s.pinned"]);
        Assert.Contains("cli.tgz", await File.ReadAllTextAsync(Path.Combine(images, ".cache.json")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_agent_process_reports_ready_through_NOTIFY_SOCKET_after_importing_and_stops_cleanly_on_SIGTERM()
    {
        const string name = "registry.airlock.test/dir/process:1";
        await WriteArchiveAsync(Path.Combine(_directory, "process.tar"), ArchiveFormat.OciLayout, ArchiveCompression.None, name);
        var socketPath = Path.Combine(_scratch, "n.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(socketPath));
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "airlock.dll"), "agent", "--images-dir", _directory, "--containerd-socket", daemon.Address })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment[SystemdNotifier.SocketVariable] = socketPath;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var buffer = new byte[64];
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var received = await notify.ReceiveAsync(buffer, SocketFlags.None, wait.Token);
            Assert.Equal("READY=1", Encoding.UTF8.GetString(buffer, 0, received));
            await using var client = daemon.Connect();
            Assert.NotNull(await client.Images.GetAsync(name, CancellationToken.None));
            Assert.False(process.HasExited);

            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync(wait.Token);
                Assert.Equal(0, term.ExitCode);
            }

            await process.WaitForExitAsync(wait.Token);
            Assert.True(process.ExitCode == 0, await stdout + await stderr);
            received = await notify.ReceiveAsync(buffer, SocketFlags.None, wait.Token);
            Assert.Equal("STOPPING=1", Encoding.UTF8.GetString(buffer, 0, received));
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
    public async Task An_archive_whose_image_is_named_only_by_a_tag_fails_saying_how_to_name_it()
    {
        // What skopeo copy … oci-archive:FILE:1 writes: the OCI ref name "1", no repository.
        var file = Path.Combine(_directory, "tag-only.tar");
        await WriteArchiveAsync(file, ArchiveFormat.OciLayout, ArchiveCompression.None, "1");
        await using var client = daemon.Connect();

        var result = Assert.Single(await Importer(client).ImportAsync(CancellationToken.None));

        Assert.Equal(ImageFileStatus.Failed, result.Status);
        Assert.Contains("named only \"1\"", result.Error, StringComparison.Ordinal);
        Assert.Contains("--name REGISTRY/REPOSITORY:TAG", result.Error, StringComparison.Ordinal);
        Assert.Null(await client.Images.GetAsync("1", CancellationToken.None));
    }

    [Fact]
    public async Task Images_of_a_removed_or_replaced_archive_are_removed_unless_a_container_uses_them()
    {
        const string gone = "registry.airlock.test/prune/gone:1";
        const string old = "registry.airlock.test/prune/upgraded:1";
        const string upgraded = "registry.airlock.test/prune/upgraded:2.0";
        const string used = "registry.airlock.test/prune/used:1";
        await WriteArchiveAsync(Path.Combine(_directory, "gone.tar"), ArchiveFormat.OciLayout, ArchiveCompression.None, gone);
        var images = Path.Combine(_directory, "k3s-airgap-images.tar.zst");
        await WriteArchiveAsync(images, ArchiveFormat.OciLayout, ArchiveCompression.Zstd, old);
        await WriteArchiveAsync(Path.Combine(_directory, "used.tar"), ArchiveFormat.OciLayout, ArchiveCompression.None, used);
        await using var client = daemon.Connect();
        var importer = Importer(client);
        Assert.All(await importer.ImportAsync(CancellationToken.None), r => Assert.Equal(ImageFileStatus.Imported, r.Status));
        var container = $"airlock-prune-{Guid.NewGuid():N}"[..24];
        var (exit, output) = await daemon.CtrAsync(["containers", "create", used, container]);
        Assert.True(exit == 0, output);
        try
        {
            // K3s's upgrade: the tarball replaced by the new release's, under the same name; other files taken away.
            await WriteArchiveAsync(images, ArchiveFormat.OciLayout, ArchiveCompression.Zstd, upgraded);
            File.Delete(Path.Combine(_directory, "gone.tar"));
            File.Delete(Path.Combine(_directory, "used.tar"));

            var second = await importer.ImportAsync(CancellationToken.None);

            Assert.Equal([upgraded], Assert.Single(second).Images);
            Assert.Null(await client.Images.GetAsync(gone, CancellationToken.None));
            Assert.Null(await client.Images.GetAsync(old, CancellationToken.None));
            Assert.NotNull(await client.Images.GetAsync(upgraded, CancellationToken.None));
            Assert.NotNull(await client.Images.GetAsync(used, CancellationToken.None));
            Assert.Contains(_logger.Entries, e => Equals(e.Fields.GetValueOrDefault("Image"), used) && Equals(e.Fields.GetValueOrDefault("Container"), container));
            Assert.Contains(_logger.Entries, e => Equals(e.Fields.GetValueOrDefault("Image"), gone)
                && Equals(e.Fields.GetValueOrDefault("File"), Path.Combine(_directory, "gone.tar")));
        }
        finally
        {
            await daemon.CtrAsync(["containers", "delete", container]);
        }

        // Once no container uses it, the next pass removes it too.
        await importer.ImportAsync(CancellationToken.None);
        Assert.Null(await client.Images.GetAsync(used, CancellationToken.None));
    }

    [Fact]
    public async Task Keep_removed_images_leaves_them_pinned()
    {
        const string name = "registry.airlock.test/prune/kept:1";
        var file = Path.Combine(_directory, "kept.tar");
        await WriteArchiveAsync(file, ArchiveFormat.OciLayout, ArchiveCompression.None, name);
        await using var client = daemon.Connect();
        var importer = new ImagesDirectoryImporter(client, Options() with { KeepRemovedImages = true });
        await importer.ImportAsync(CancellationToken.None);

        File.Delete(file);
        Assert.Empty(await importer.ImportAsync(CancellationToken.None));

        Assert.Equal("pinned", (await client.Images.GetAsync(name, CancellationToken.None))!.Labels["io.cri-containerd.pinned"]);
    }

    [Fact]
    public async Task A_one_shot_agent_exits_1_naming_the_file_that_failed_and_a_missing_images_dir_it_was_given()
    {
        await WriteArchiveAsync(Path.Combine(_directory, "good.tar"), ArchiveFormat.OciLayout, ArchiveCompression.None, "registry.airlock.test/dir/one-shot:1");
        await File.WriteAllTextAsync(Path.Combine(_directory, "broken.tar.gz"), "not an archive");
        var error = new StringWriter();

        var code = await AirlockCli.RunAsync(["agent", "--images-dir", _directory, "--containerd-socket", daemon.Address, "--watch", "false"],
            new Hashtable(), new StringWriter(), error);

        Assert.Equal(1, code);
        Assert.Contains("1 images file(s) failed to import", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("broken.tar.gz", error.ToString(), StringComparison.Ordinal);

        error = new StringWriter();
        var missing = Path.Combine(_scratch, "no-such-images-dir");
        code = await AirlockCli.RunAsync(["agent", "--images-dir", missing, "--containerd-socket", daemon.Address, "--watch", "false"],
            new Hashtable(), new StringWriter(), error);
        // Refused before the agent starts, as every explicitly given path is.
        Assert.Equal(1, code);
        Assert.Contains($"--images-dir: directory \"{missing}\" does not exist (from the command line)", error.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(missing));

        // The agent itself refuses too (a directory removed after that check, or the library used without the CLI).
        await using var client = daemon.Connect();
        var agent = new ImagesDirectoryAgent(client, Options() with { Directory = missing, MustExist = true }, new SystemdNotifier(null), TimeProvider.System)
        {
            Watch = false,
        };
        var refused = await Assert.ThrowsAsync<DirectoryNotFoundException>(() => agent.RunAsync(CancellationToken.None));
        Assert.Contains($"images directory {missing} does not exist", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(missing));
    }

    [Fact]
    public async Task A_stop_during_the_start_up_pass_ends_a_watching_agent_cleanly_and_tells_systemd()
    {
        // A containerd that accepts the connection and never answers: the start-up pass waits in its first call, and the
        // accepted connection is the gate that says it is there. (A full run once stopped an agent just there and got
        // "Call canceled by the client" out of RunAsync instead of a clean stop.)
        var silentPath = Path.Combine(_scratch, "silent.sock");
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        silent.Bind(new UnixDomainSocketEndPoint(silentPath));
        silent.Listen();
        var connected = silent.AcceptAsync();
        var notifyPath = Path.Combine(_scratch, "stopping.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
        await using var client = ContainerdClient.Connect(silentPath);
        var agent = new ImagesDirectoryAgent(client, Options(), new SystemdNotifier(notifyPath), TimeProvider.System);
        using var stop = new CancellationTokenSource();

        var running = agent.RunAsync(stop.Token);
        using var connection = await connected.WaitAsync(TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await running.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Null(agent.FirstPass);
        var buffer = new byte[256];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Assert.Equal("STOPPING=1", Encoding.UTF8.GetString(buffer, 0, await notify.ReceiveAsync(buffer, SocketFlags.None, wait.Token)));
    }

    [Fact]
    public async Task Readiness_carries_a_status_naming_the_files_that_failed()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "broken.tar"), "not an archive");
        var socketPath = Path.Combine(_scratch, "status.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(socketPath));
        await using var client = daemon.Connect();
        var agent = new ImagesDirectoryAgent(client, Options(), new SystemdNotifier(socketPath), TimeProvider.System) { Watch = false };

        await agent.RunAsync(CancellationToken.None);

        var buffer = new byte[4096];
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var message = Encoding.UTF8.GetString(buffer, 0, await notify.ReceiveAsync(buffer, SocketFlags.None, wait.Token));
        Assert.StartsWith("READY=1\nSTATUS=1 images file(s) failed to import: ", message, StringComparison.Ordinal);
        Assert.Contains("broken.tar", message, StringComparison.Ordinal);
        Assert.Contains(_logger.Entries, e => e.Level == LogLevel.Error && e.Fields.ContainsKey("Summary"));
    }

    private ImagesDirectoryImporter Importer(ContainerdClient client) => new(client, Options());

    private ImagesDirectoryOptions Options() => new() { Directory = _directory, Logger = _logger };

    internal static async Task WriteArchiveAsync(string path, ArchiveFormat format, ArchiveCompression compression, string name)
    {
        // A docker archive holds single-platform images only.
        var platforms = format == ArchiveFormat.DockerArchive ? new[] { ContainerdImportOptions.HostPlatform } : null;
        var target = ArchiveTarget.Create(path, format, compression);
        await using (target)
        {
            await ImageGraph.CopyAsync(Image, target, Image.Index, new CopyOptions { Reference = name, Platforms = platforms }, null, CancellationToken.None);
            await target.CompleteAsync(CancellationToken.None);
        }
    }

    private static void CorruptMiddle(string path)
    {
        var bytes = File.ReadAllBytes(path);
        for (var i = bytes.Length / 3; i < bytes.Length / 3 + 64; i++)
        {
            bytes[i] ^= 0x5a;
        }

        File.WriteAllBytes(path, bytes);
    }

    private static void Truncate(string path)
    {
        using var file = File.OpenWrite(path);
        file.SetLength(file.Length / 2);
    }
}

/// <summary>Keeps every log entry with its named fields, so tests can check what was logged about which file.</summary>
internal sealed class RecordingLogger : ILogger
{
    private readonly List<(LogLevel Level, IReadOnlyDictionary<string, object?> Fields)> _entries = [];

    public IReadOnlyList<(LogLevel Level, IReadOnlyDictionary<string, object?> Fields)> Entries
    {
        get
        {
            lock (_entries)
            {
                return _entries.ToList();
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var fields = state is IEnumerable<KeyValuePair<string, object?>> pairs
            ? pairs.GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.First().Value)
            : new Dictionary<string, object?>();
        lock (_entries)
        {
            _entries.Add((logLevel, fields));
        }
    }
}
