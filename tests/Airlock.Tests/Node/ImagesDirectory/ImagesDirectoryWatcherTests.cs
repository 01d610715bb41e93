using Airlock.Node.Containerd;
using Airlock.Node.ImagesDirectory;

namespace Airlock.Tests.Node.ImagesDirectory;

/// <summary>The debounce on its own, with time under the test's control (no containerd: the files are not archives, so they fail before it is dialled).</summary>
public sealed class ImagesDirectoryWatcherTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-watch-").FullName;
    private readonly string _scratch = Directory.CreateTempSubdirectory("airlock-watch-scratch-").FullName;

    public void Dispose()
    {
        Directory.Delete(_directory, recursive: true);
        Directory.Delete(_scratch, recursive: true);
    }

    [Fact]
    public async Task A_pass_runs_only_once_no_change_was_seen_for_the_debounce_time()
    {
        var time = new ManualTimeProvider();
        await using var client = ContainerdClient.Connect(Path.Combine(_scratch, "no-containerd.sock"));
        var importer = new ImagesDirectoryImporter(client, new ImagesDirectoryOptions { Directory = _directory });
        var passes = new List<IReadOnlyList<ImageFileResult>>();
        var passed = new SemaphoreSlim(0);
        var secondSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var watcher = new ImagesDirectoryWatcher(importer, _directory, time)
        {
            Imported = results =>
            {
                lock (passes)
                {
                    passes.Add(results);
                }

                passed.Release();
            },
            ChangeRecorded = path =>
            {
                if (Path.GetFileName(path) == "second.tar")
                {
                    secondSeen.TrySetResult();
                }
            },
        };
        using var stop = new CancellationTokenSource();
        watcher.Start();
        var running = watcher.RunAsync(stop.Token);

        MoveIn("first.tar");
        await time.WaitForTimersAsync(1);
        Assert.Equal(0, time.Advance(TimeSpan.FromSeconds(1.5)));
        MoveIn("second.tar");
        await secondSeen.Task.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, time.Advance(TimeSpan.FromSeconds(0.6)));

        // The second file arrived within the first wait: the watcher waits a full debounce again. Only a timer
        // moves it on, so a debounce that fires no timer cannot have let a pass run.
        await time.WaitForTimersAsync(2);
        Assert.Equal(0, time.Advance(TimeSpan.FromSeconds(1.5)));
        lock (passes)
        {
            Assert.Empty(passes);
        }

        Assert.Equal(1, time.Advance(TimeSpan.FromSeconds(0.6)));
        Assert.True(await passed.WaitAsync(TimeSpan.FromSeconds(60)));

        lock (passes)
        {
            var pass = Assert.Single(passes);
            Assert.Equal(["first.tar", "second.tar"], pass.Select(r => Path.GetFileName(r.File)).Order(StringComparer.Ordinal));
            Assert.All(pass, r => Assert.Equal(ImageFileStatus.Failed, r.Status));
        }

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    private void MoveIn(string name)
    {
        var staged = Path.Combine(_scratch, name);
        File.WriteAllText(staged, "not an archive");
        File.Move(staged, Path.Combine(_directory, name));
    }
}
