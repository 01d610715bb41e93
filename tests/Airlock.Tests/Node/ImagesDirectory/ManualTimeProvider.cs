namespace Airlock.Tests.Node.ImagesDirectory;

/// <summary>Time that moves only when the test says so; timers fire on <see cref="Advance"/>.</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now;
    private int _created;

    public ManualTimeProvider()
        : this(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    /// <summary>Starting at <paramref name="start"/> (e.g. now, for certificates that outside tools check against the real clock).</summary>
    public ManualTimeProvider(DateTimeOffset start) => _now = start;

    public int TimersCreated => Volatile.Read(ref _created);

    public override DateTimeOffset GetUtcNow()
    {
        lock (_timers)
        {
            return _now;
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        lock (_timers)
        {
            _timers.Add(timer);
        }

        Interlocked.Increment(ref _created);
        return timer;
    }

    /// <summary>Moves time on and fires the timers that fell due; returns how many (nothing else moves a waiter on).</summary>
    public int Advance(TimeSpan by)
    {
        List<ManualTimer> due;
        lock (_timers)
        {
            _now += by;
            due = _timers.Where(t => t.Due is { } at && at <= _now).ToList();
            foreach (var timer in due)
            {
                timer.Due = null;
            }
        }

        foreach (var timer in due)
        {
            timer.Fire();
        }

        return due.Count;
    }

    /// <summary>Waits (in real time) until <paramref name="count"/> timers were created.</summary>
    public async Task WaitForTimersAsync(int count)
    {
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (TimersCreated < count)
        {
            await Task.Delay(20, wait.Token);
        }
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? Due { get; set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._timers)
            {
                Due = dueTime == Timeout.InfiniteTimeSpan ? null : owner._now + dueTime;
            }

            return true;
        }

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (owner._timers)
            {
                Due = null;
                owner._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
