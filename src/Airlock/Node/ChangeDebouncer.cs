namespace Airlock.Node;

/// <summary>
/// Turns a burst of change notifications (a file copied in, an editor's write-and-rename) into one wake-up:
/// <see cref="WaitAsync"/> returns once a change was signalled and then none for the debounce time. Shared by
/// the images-directory watcher and the registries.yaml reloader.
/// </summary>
public sealed class ChangeDebouncer(TimeProvider timeProvider)
{
    private long _changes;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Records a change (thread-safe; from FileSystemWatcher callbacks).</summary>
    public void Signal()
    {
        Interlocked.Increment(ref _changes);
        Volatile.Read(ref _changed).TrySetResult();
    }

    /// <summary>Waits for a change, then until <paramref name="debounce"/> passed without another.</summary>
    public async Task WaitAsync(TimeSpan debounce, CancellationToken cancellationToken)
    {
        await Volatile.Read(ref _changed).Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        long seen;
        do
        {
            seen = Interlocked.Read(ref _changes);
            await Task.Delay(debounce, timeProvider, cancellationToken).ConfigureAwait(false);
        }
        while (Interlocked.Read(ref _changes) != seen);

        Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        if (Interlocked.Read(ref _changes) != seen)
        {
            // A change raced the reset: keep its signal for the next round.
            Signal();
        }
    }
}
