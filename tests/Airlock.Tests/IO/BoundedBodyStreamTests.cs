using System.IO.Pipelines;
using Airlock.IO;

namespace Airlock.Tests.IO;

/// <summary>A body that stops sending costs at most its stall bound, measured on the clock it is given.</summary>
public sealed class BoundedBodyStreamTests
{
    [Fact]
    public async Task A_read_that_gets_nothing_for_the_stall_bound_fails_with_a_timeout_naming_the_progress()
    {
        var pipe = new Pipe();
        var time = new ManualTime();
        await using var body = new BoundedBodyStream(pipe.Reader.AsStream(), 10, TimeSpan.FromSeconds(3), time);
        await pipe.Writer.WriteAsync(new byte[4]);
        var buffer = new byte[10];
        Assert.Equal(4, await body.ReadAsync(buffer));

        var stalled = body.ReadAsync(buffer).AsTask();
        Assert.False(stalled.IsCompleted);
        time.Fire();

        var error = await Assert.ThrowsAsync<TimeoutException>(() => stalled);
        Assert.Contains("after 4 of 10 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Disposing_disposes_what_it_owns()
    {
        var owned = new Owned();
        var body = new BoundedBodyStream(new MemoryStream([1, 2, 3]), 3, Timeout.InfiniteTimeSpan, TimeProvider.System, owned);
        Assert.Equal(3, body.Length);

        await body.DisposeAsync();

        Assert.True(owned.Disposed);
    }

    private sealed class Owned : IDisposable
    {
        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    /// <summary>A clock whose timers fire only when the test says so.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private readonly List<Action> _callbacks = [];

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            lock (_callbacks)
            {
                _callbacks.Add(() => callback(state));
            }

            return new Timer();
        }

        public void Fire()
        {
            List<Action> callbacks;
            lock (_callbacks)
            {
                callbacks = [.. _callbacks];
            }

            foreach (var callback in callbacks)
            {
                callback();
            }
        }

        private sealed class Timer : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
