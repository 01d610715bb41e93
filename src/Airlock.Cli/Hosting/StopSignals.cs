using System.Runtime.InteropServices;

namespace Airlock.Cli.Hosting;

/// <summary>
/// SIGTERM and SIGINT (Ctrl+C) as a cancellation, so a serving verb stops gracefully (transfers in flight finish
/// within the server's shutdown timeout) instead of the runtime ending the process at once.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly PosixSignalRegistration _onTerm;
    private readonly PosixSignalRegistration _onInt;

    private StopSignals(CancellationToken cancellationToken)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        _onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
    }

    /// <summary>Cancelled by SIGTERM, SIGINT or <c>cancellationToken</c>.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>Handles SIGTERM and SIGINT from now until disposed.</summary>
    public static StopSignals Register(CancellationToken cancellationToken) => new(cancellationToken);

    /// <summary>Completes (never throws) once a stop signal arrived or <c>cancellationToken</c> was cancelled.</summary>
    public async Task WaitAsync()
    {
        try
        {
            await Task.Delay(Timeout.Infinite, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The signal this waits for.
        }
    }

    public void Dispose()
    {
        _onInt.Dispose();
        _onTerm.Dispose();
        _stop.Dispose();
    }

    private void Stop(PosixSignalContext signal)
    {
        signal.Cancel = true;
        _stop.Cancel();
    }
}
