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

/// <summary>
/// A containerd the agent does not run (e.g. Debian's containerd.service) whose own config reads a hosts.toml tree
/// (<c>config_path</c>) the agent renders registries.yaml into (<see cref="ContainerdRenderSettings.HostsDirectory"/>),
/// with the node-local mirror run by the agent for the registries that go through it.
/// </summary>
public sealed record ExistingContainerdHosts
{
    /// <summary>How registries.yaml is rendered; <see cref="ContainerdRenderSettings.HostsDirectory"/> is required.</summary>
    public required ContainerdRenderSettings Render { get; init; }

    /// <summary>As <see cref="SupervisedContainerd.Mirror"/>.</summary>
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

    /// <summary>With <see cref="ContainerdSocket"/>: render registries.yaml into the hosts directory that containerd reads; null renders nothing.</summary>
    public ExistingContainerdHosts? Hosts { get; init; }

    /// <summary>
    /// Keep watching the images directory after the first pass. Without supervision, false means "import once and
    /// return"; with supervision the agent keeps running containerd until stopped either way, and with <see cref="Hosts"/>
    /// the node mirror serving that containerd.
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
/// containerd once no import is running) — until cancelled, when containerd is stopped. With an existing containerd
/// and <see cref="NodeAgentOptions.Hosts"/>, registries.yaml is rendered into the hosts directory that containerd reads and
/// followed the same way, and the node mirror runs for it, without any containerd to start or restart.
/// </summary>
public sealed class NodeAgent(NodeAgentOptions options, SystemdNotifier notifier, TimeProvider timeProvider)
{
    private ImagesDirectoryAgent? _images;
    private MirrorOptions? _mirrorOptions;
    private RegistriesFile? _registries;

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
        if (options.Supervision is { } supervision)
        {
            await RunRenderedAsync(supervision.Render, supervision.Mirror, "containerd was not started",
                (render, ct) => SuperviseAsync(supervision, render, ct), cancellationToken).ConfigureAwait(false);
            return;
        }

        var socket = options.ContainerdSocket ?? throw new InvalidOperationException("either Supervision or ContainerdSocket is required");
        if (options.Hosts is { } hosts)
        {
            var directory = hosts.Render.HostsDirectory ?? throw new InvalidOperationException("Hosts needs Render.HostsDirectory");
            await RunRenderedAsync(hosts.Render, hosts.Mirror, $"nothing was written to {directory}",
                (render, ct) => ServeExistingAsync(socket, render, ct), cancellationToken).ConfigureAwait(false);
            return;
        }

        await RunImagesAsync(socket, cancellationToken).ConfigureAwait(false);
        if (!options.Watch && _images?.FirstPass?.Where(r => r.Status == ImageFileStatus.Failed).ToList() is { Count: > 0 } failed)
        {
            // Import once and exit: the exit status is the only report a script or a unit's ExecStartPre gets.
            throw new ImagesImportException(ImagesDirectoryAgent.FailureSummary(failed));
        }
    }

    /// <summary>
    /// registries.yaml rendered once (refused as a whole when it has errors), the node mirror started when it is needed,
    /// then <paramref name="run"/> with the settings the reloads use; the mirror is stopped when it returns.
    /// </summary>
    private async Task RunRenderedAsync(ContainerdRenderSettings render, MirrorOptions? mirror, string refusal,
        Func<ContainerdRenderSettings, CancellationToken, Task> run, CancellationToken cancellationToken)
    {
        var logger = options.Logger;
        if (mirror is { } mirrorOptions)
        {
            _mirrorOptions = mirrorOptions with { DisableDefaultEndpoint = render.DisableDefaultEndpoint };
            render = render with { MirrorAddress = mirrorOptions.Listen, SharePeers = mirrorOptions.BlobSource is not null };
        }

        var first = await ContainerdConfigRendering.RenderAsync(render, cancellationToken).ConfigureAwait(false);
        if (first.Rejected)
        {
            throw new InvalidDataException($"{render.RegistriesPath} cannot be used; {refusal}:{Environment.NewLine}"
                + string.Join(Environment.NewLine, first.Problems.Select(p => p.ToString())));
        }

        foreach (var problem in first.Problems)
        {
            logger.LogWarning("{Problem}", problem.ToString());
        }

        try
        {
            // Before containerd starts (or pulls through the new files): its first pull may already go through the mirror.
            await ServeMirrorAsync(first.Registries!, cancellationToken).ConfigureAwait(false);
            await run(render, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (Mirror is { } running)
            {
                await running.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The containerd the agent does not run: its hosts directory follows registries.yaml (hosts.toml is read at every
    /// pull, so nothing restarts), the images directory is imported, and at the stop the shared registries' hosts.toml go
    /// back to their own endpoints, since that containerd keeps pulling without the mirror.
    /// </summary>
    private Task ServeExistingAsync(string socket, ContainerdRenderSettings render, CancellationToken cancellationToken) =>
        ImportFollowingRegistriesAsync(render, (_, _) => Task.CompletedTask, socket, () => RenderWithoutPeersAsync(render), cancellationToken);

    /// <summary>
    /// Imports the images directory (and keeps watching it) while registries.yaml is followed — every accepted change
    /// re-rendered and given to the mirror, <paramref name="restart"/> called when config.toml changed — until cancelled
    /// (with <c>--watch false</c> too: containerd, or the mirror serving it, keeps running); then <paramref name="stopped"/>.
    /// </summary>
    private async Task ImportFollowingRegistriesAsync(ContainerdRenderSettings render, Func<string, CancellationToken, Task> restart, string socket,
        Func<Task> stopped, CancellationToken cancellationToken)
    {
        using var reloader = new RegistriesReloader(render, restart, timeProvider, options.Logger)
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
            await RunImagesAsync(socket, cancellationToken).ConfigureAwait(false);
            if (!options.Watch)
            {
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

            await stopped().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The last accepted registries.yaml rendered as if peers were not shared: the registries that went through the
    /// mirror only to ask peers name their own endpoints again (a killed agent leaves the mirror-first files, which
    /// containerd gets past at a refused connection). Registries that need the mirror keep it as their only server:
    /// containerd falling back by itself would pull what registries.yaml forbids, so they wait for the mirror.
    /// </summary>
    private async Task RenderWithoutPeersAsync(ContainerdRenderSettings render)
    {
        if (_registries is not { } registries || !render.SharePeers)
        {
            return;
        }

        try
        {
            var plan = await ContainerdConfigRendering.RenderAsync(render with { SharePeers = false }, registries, CancellationToken.None).ConfigureAwait(false);
            options.Logger.LogInformation("Stopping: the shared registries' hosts.toml under {HostsDirectory} name their own endpoints again ({Count} files changed)",
                render.HostsTree, plan.Files.Count(f => f.Changes));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            options.Logger.LogError(ex, "Stopping: the hosts.toml under {HostsDirectory} could not be rewritten; they still ask the node mirror first, then the registries' endpoints",
                render.HostsTree);
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
            await ImportFollowingRegistriesAsync(render, RestartSafelyAsync, supervision.Supervisor.SocketPath, supervisor.StopAsync, cancellationToken).ConfigureAwait(false);
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
        _registries = registries;
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
