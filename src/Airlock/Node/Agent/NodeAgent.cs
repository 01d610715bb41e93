using Airlock.Node.Containerd;
using Airlock.Node.ContainerdSupervision;
using Airlock.Node.ImagesDirectory;
using Airlock.Node.Mirror;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Node.Agent;

/// <summary>The containerd the agent runs itself: how its configuration is rendered and how it is supervised.</summary>
public sealed record SupervisedContainerd
{
    public required ContainerdRenderSettings Render { get; init; }

    /// <summary>Supervisor settings; its <c>Environment</c> is filled from <see cref="ContainerdRenderSettings.ProxyEnvironment"/>.</summary>
    public required ContainerdSupervisorOptions Supervisor { get; init; }

    /// <summary>
    /// The node-local mirror, started when registries.yaml needs what stock containerd lacks (a rewrite, or no
    /// default endpoint) and pointed at by those registries' hosts.toml; null to render K3s's files unchanged.
    /// Its <c>DisableDefaultEndpoint</c> is taken from <see cref="ContainerdRenderSettings"/>.
    /// </summary>
    public MirrorOptions? Mirror { get; init; }
}

/// <summary>What <see cref="NodeAgent"/> runs.</summary>
public sealed record NodeAgentOptions
{
    public required ImagesDirectoryOptions Images { get; init; }

    /// <summary>Render, start and supervise containerd; null to use the one already serving <see cref="ContainerdSocket"/>.</summary>
    public SupervisedContainerd? Supervision { get; init; }

    /// <summary>The existing containerd's socket when <see cref="Supervision"/> is null.</summary>
    public string? ContainerdSocket { get; init; }

    /// <summary>
    /// Keep watching the images directory after the first pass. Without supervision, false means "import once and
    /// return"; with supervision the agent keeps running containerd until stopped either way.
    /// </summary>
    public bool Watch { get; init; } = true;

    public TimeSpan ImagesDebounce { get; init; } = ImagesDirectoryWatcher.DefaultDebounce;

    public TimeSpan RegistriesDebounce { get; init; } = RegistriesReloader.DefaultDebounce;

    public ILogger Logger { get; init; } = NullLogger.Instance;
}

/// <summary>
/// <c>airlock agent</c> as K3s's agent orders start-up: registries.yaml rendered and containerd started (or an
/// existing one used), the images directory imported, READY=1 to systemd, then watching — the images directory
/// for new archives, registries.yaml for changes (hosts.toml rewritten in place; a changed config.toml restarts
/// containerd once no import is running) — until cancelled, when containerd is stopped.
/// </summary>
public sealed class NodeAgent(NodeAgentOptions options, SystemdNotifier notifier, TimeProvider timeProvider)
{
    private ImagesDirectoryAgent? _images;
    private MirrorOptions? _mirrorOptions;

    /// <summary>The supervised containerd, once started (null when using an existing one).</summary>
    public ContainerdSupervisor? Supervisor { get; private set; }

    /// <summary>The importer every images-directory pass goes through, once the agent is running.</summary>
    public ImagesDirectoryImporter? Importer => _images?.Importer;

    /// <summary>The node-local mirror, once registries.yaml has needed it.</summary>
    public NodeMirror? Mirror { get; private set; }

    /// <summary>Results of every images-directory pass.</summary>
    public Action<IReadOnlyList<ImageFileResult>>? Imported { get; init; }

    /// <summary>Outcome of every registries.yaml reload.</summary>
    public Action<RenderOutcome>? Reloaded { get; init; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var logger = options.Logger;
        if (options.Supervision is not { } supervision)
        {
            var socket = options.ContainerdSocket ?? throw new InvalidOperationException("either Supervision or ContainerdSocket is required");
            await RunImagesAsync(socket, cancellationToken).ConfigureAwait(false);
            if (!options.Watch && _images?.FirstPass?.Where(r => r.Status == ImageFileStatus.Failed).ToList() is { Count: > 0 } failed)
            {
                // Import once and exit: the exit status is the only report a script or a unit's ExecStartPre gets.
                throw new ImagesImportException(ImagesDirectoryAgent.FailureSummary(failed));
            }

            return;
        }

        var render = supervision.Render;
        if (supervision.Mirror is { } mirrorOptions)
        {
            _mirrorOptions = mirrorOptions with { DisableDefaultEndpoint = render.DisableDefaultEndpoint };
            render = render with { MirrorAddress = mirrorOptions.Listen, SharePeers = mirrorOptions.BlobSource is not null };
        }

        var first = await ContainerdConfigRendering.RenderAsync(render, cancellationToken).ConfigureAwait(false);
        if (first.Rejected)
        {
            throw new InvalidDataException($"{render.RegistriesPath} cannot be used; containerd was not started:{Environment.NewLine}"
                + string.Join(Environment.NewLine, first.Problems.Select(p => p.ToString())));
        }

        foreach (var problem in first.Problems)
        {
            logger.LogWarning("{Problem}", problem.ToString());
        }

        try
        {
            // Before containerd starts: its first pull may already go through the mirror.
            await ServeMirrorAsync(first.Registries!, cancellationToken).ConfigureAwait(false);
            await SuperviseAsync(supervision, render, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (Mirror is { } mirror)
            {
                await mirror.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task SuperviseAsync(SupervisedContainerd supervision, ContainerdRenderSettings render, CancellationToken cancellationToken)
    {
        var logger = options.Logger;
        var supervisor = new ContainerdSupervisor(supervision.Supervisor with { Environment = render.ProxyEnvironment }, timeProvider)
        {
            Restarted = (_, _) =>
            {
                // Imports cut short by containerd going away are retried; .cache.json skips the finished ones.
                _images?.Rescan();
                return Task.CompletedTask;
            },
        };
        await using (supervisor.ConfigureAwait(false))
        {
            Supervisor = supervisor;
            await supervisor.StartAsync(cancellationToken).ConfigureAwait(false);
            using var reloader = new RegistriesReloader(render, RestartSafelyAsync, timeProvider, logger)
            {
                Debounce = options.RegistriesDebounce,
                Accepted = ServeMirrorOnReloadAsync,
                Reloaded = Reloaded,
            };
            // Recording from now: a change made while the images are imported is not missed.
            reloader.Start();
            using var stopWatching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var reloading = reloader.RunAsync(stopWatching.Token);
            try
            {
                await RunImagesAsync(supervision.Supervisor.SocketPath, cancellationToken).ConfigureAwait(false);
                if (!options.Watch)
                {
                    // containerd keeps running under supervision until the agent is stopped.
                    await Task.Delay(Timeout.InfiniteTimeSpan, timeProvider, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                await stopWatching.CancelAsync().ConfigureAwait(false);
                try
                {
                    await reloading.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }

                await supervisor.StopAsync().ConfigureAwait(false);
            }
        }

        async Task RestartSafelyAsync(string reason, CancellationToken ct)
        {
            var pause = _images?.Importer.TryPause();
            if (pause is null && _images is { } images)
            {
                // Said, because the restart then waits as long as the import does.
                logger.LogInformation("containerd restart ({Reason}) waits for the image import in progress", reason);
                pause = await images.Importer.PauseAsync(ct).ConfigureAwait(false);
            }

            try
            {
                await supervisor.RestartAsync(reason, ct).ConfigureAwait(false);
            }
            finally
            {
                pause?.Dispose();
            }
        }
    }

    /// <summary>
    /// A mirror that cannot start on a reload (its address taken) is logged, not thrown: the reloader must keep
    /// watching, and the next reload tries again.
    /// </summary>
    private async Task ServeMirrorOnReloadAsync(RegistriesFile registries, CancellationToken cancellationToken)
    {
        try
        {
            await ServeMirrorAsync(registries, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ArgumentException)
        {
            options.Logger.LogError(ex, "The node mirror could not start on {Address}; registries that need it cannot be pulled until it does", _mirrorOptions?.Listen);
        }
    }

    /// <summary>Starts the mirror the first time the file needs it, and gives it every accepted file after that.</summary>
    private async Task ServeMirrorAsync(RegistriesFile registries, CancellationToken cancellationToken)
    {
        if (_mirrorOptions is not { } mirrorOptions)
        {
            return;
        }

        if (Mirror is { } running)
        {
            try
            {
                running.Reload(registries);
            }
            catch (InvalidOperationException ex)
            {
                options.Logger.LogError("The node mirror keeps the previous registries.yaml: {Problem}", ex.Message);
            }

            return;
        }

        var sharing = mirrorOptions.BlobSource is not null;
        var needing = new RegistryEndpoints(registries, mirrorOptions.DisableDefaultEndpoint).Hosts
            .Where(h => h.NeedsNodeMirror || (sharing && RegistryEndpoints.IsPeerShared(registries, h.Key))).Select(h => h.Key).ToList();
        if (needing.Count == 0 && !sharing)
        {
            return;
        }

        options.Logger.LogInformation("Starting the node mirror on {Address} for {Registries}: stock containerd ignores rewrites and always falls back to the registry itself{Peers}",
            mirrorOptions.Listen, string.Join(", ", needing), sharing ? "; shared registries ask peers first" : string.Empty);
        Mirror = await NodeMirror.StartAsync(registries, mirrorOptions, cancellationToken).ConfigureAwait(false);
    }

    private async Task RunImagesAsync(string socket, CancellationToken cancellationToken)
    {
        var client = ContainerdClient.Connect(socket);
        await using (client.ConfigureAwait(false))
        {
            _images = new ImagesDirectoryAgent(client, options.Images, notifier, timeProvider)
            {
                Watch = options.Watch,
                Debounce = options.ImagesDebounce,
                Imported = Imported,
            };
            await _images.RunAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>A one-shot import (<c>--watch false</c>) in which some files failed; the message lists them with their reasons.</summary>
public sealed class ImagesImportException(string message) : Exception(message);
