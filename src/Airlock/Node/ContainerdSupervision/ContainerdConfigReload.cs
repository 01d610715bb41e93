using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Node.ContainerdSupervision;

/// <summary>What rendering registries.yaml for the supervised containerd needs besides the file itself.</summary>
public sealed record ContainerdRenderSettings
{
    public required string RegistriesPath { get; init; }

    /// <summary>
    /// The file must exist: it was given explicitly, or was there at start. A missing one is then refused like a broken
    /// one, keeping the configuration in force, instead of being rendered as "no registries", which would send every
    /// pull to the registries themselves. False only for the default path absent from the start (K3s without one).
    /// </summary>
    public bool RegistriesRequired { get; init; }

    public required ContainerdConfigOptions Config { get; init; }

    public bool DisableDefaultEndpoint { get; init; }

    /// <summary>proxy.env content (also given to containerd's environment); empty when no proxy is set.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ProxyEnvironment { get; init; } = [];

    /// <summary>
    /// The node-local mirror's address: registries stock containerd cannot serve as registries.yaml says (a rewrite,
    /// or no default endpoint) are pointed at it; every other hosts.toml stays as K3s writes it. Null: K3s's output.
    /// </summary>
    public System.Net.IPEndPoint? MirrorAddress { get; init; }

    /// <summary>The peer-to-peer mirror runs: every registry it shares is pointed at the node mirror too, which asks peers first.</summary>
    public bool SharePeers { get; init; }

    /// <summary>
    /// Render only the hosts.toml tree, into this existing directory that a containerd the agent does not run reads
    /// (its <c>config_path</c>): no config.toml, no proxy.env (<see cref="Config"/> gives only the generator name). Shared
    /// registries then list the node mirror first and their endpoints after it, since that containerd outlives the agent.
    /// Null: the supervised containerd's config.toml and certs.d under <see cref="ContainerdConfigOptions.ContainerdDir"/>.
    /// </summary>
    public string? HostsDirectory { get; init; }

    /// <summary>Where the hosts.toml tree is written.</summary>
    public string HostsTree => HostsDirectory ?? Config.CertsDir;
}

/// <summary>One rendering: every problem found, and the plan applied — null when the file was refused.</summary>
public sealed record RenderOutcome(IReadOnlyList<RegistriesProblem> Problems, RenderPlan? Plan, RegistriesFile? Registries = null)
{
    public bool Rejected => Plan is null;

    /// <summary>config.toml changed: containerd reads it only at start, so it must be restarted.</summary>
    public bool ConfigChanged => Plan?.Files.Any(f => Path.GetFileName(f.Path) == ContainerdRenderer.ConfigTomlName && f.Changes) ?? false;

    /// <summary>Some hosts.toml was written or removed: containerd reads certs.d at every pull, nothing else to do.</summary>
    public bool HostsChanged => Plan is not null && (Plan.StaleHostDirectories.Count > 0
        || Plan.Files.Any(f => Path.GetFileName(f.Path) == ContainerdRenderer.HostsTomlName && f.Changes));
}

/// <summary>
/// registries.yaml → config.toml and certs.d, for the containerd the agent runs, through the same
/// <see cref="ContainerdRenderer"/> as <c>airlock registries render</c>. A file with errors is refused as a
/// whole and nothing is written, so a typo never takes away the mirrors and credentials that work now.
/// </summary>
public static class ContainerdConfigRendering
{
    public static async Task<RenderOutcome> RenderAsync(ContainerdRenderSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var (file, readProblems) = await RegistriesFileReader.ReadAsync(settings.RegistriesPath, missingIsEmpty: !settings.RegistriesRequired, cancellationToken)
            .ConfigureAwait(false);
        var problems = RegistriesValidator.Validate(file, readProblems);
        if (problems.Any(p => p.Severity >= ProblemSeverity.Error))
        {
            return new RenderOutcome(problems, null);
        }

        var plan = await RenderAsync(settings, file, cancellationToken).ConfigureAwait(false);
        return new RenderOutcome(problems, plan, file);
    }

    /// <summary>Renders <paramref name="file"/>, already read and accepted, as <paramref name="settings"/> say.</summary>
    public static async Task<RenderPlan> RenderAsync(ContainerdRenderSettings settings, RegistriesFile file, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var plan = await PlanAsync(settings, file, cancellationToken).ConfigureAwait(false);
        await ContainerdRenderer.ApplyAsync(plan, cancellationToken).ConfigureAwait(false);
        return plan;
    }

    private static Task<RenderPlan> PlanAsync(ContainerdRenderSettings settings, RegistriesFile file, CancellationToken cancellationToken) =>
        settings.HostsDirectory is { } hosts
            ? ContainerdRenderer.PlanHostsAsync(file, hosts, settings.Config.Generator, settings.DisableDefaultEndpoint, settings.MirrorAddress, cancellationToken,
                settings.SharePeers, mirrorFirst: true)
            : ContainerdRenderer.PlanAsync(file, settings.Config, settings.DisableDefaultEndpoint, cancellationToken, settings.ProxyEnvironment, settings.MirrorAddress,
                settings.SharePeers);
}

/// <summary>
/// Watches registries.yaml and re-renders when it changes (debounced, so an editor's write-and-rename is one
/// change). New hosts.toml files take effect at the next pull; a changed config.toml is handed to
/// <c>restart</c>, which restarts containerd when that is safe. A file with errors is logged problem by
/// problem and the previous configuration stays in place.
/// </summary>
public sealed class RegistriesReloader(
    ContainerdRenderSettings settings,
    Func<string, CancellationToken, Task> restart,
    TimeProvider timeProvider,
    ILogger? logger = null) : IDisposable
{
    public static readonly TimeSpan DefaultDebounce = TimeSpan.FromMilliseconds(500);

    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly ChangeDebouncer _debouncer = new(timeProvider);
    private FileSystemWatcher? _watcher;

    public TimeSpan Debounce { get; init; } = DefaultDebounce;

    /// <summary>
    /// Called with the file of every reload that was accepted, before containerd is restarted for it: the node-local
    /// mirror takes the new file here.
    /// </summary>
    public Func<RegistriesFile, CancellationToken, Task>? Accepted { get; init; }

    /// <summary>Called after every reload with its outcome (tests, metrics).</summary>
    public Action<RenderOutcome>? Reloaded { get; init; }

    /// <summary>Starts recording changes of the file (its directory must exist; when it does not, there is nothing to watch).</summary>
    public bool Start()
    {
        var path = Path.GetFullPath(settings.RegistriesPath);
        var directory = Path.GetDirectoryName(path)!;
        if (_watcher is not null || !Directory.Exists(directory))
        {
            return _watcher is not null;
        }

        var watcher = new FileSystemWatcher(directory, Path.GetFileName(path))
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        watcher.Created += (_, _) => Signal();
        watcher.Changed += (_, _) => Signal();
        watcher.Deleted += (_, _) => Signal();
        watcher.Renamed += (_, _) => Signal();
        watcher.Error += (_, _) => Signal();
        watcher.EnableRaisingEvents = true;
        _watcher = watcher;
        return true;
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (!Start())
        {
            _logger.LogWarning("{Directory} does not exist: changes to {Registries} will not be picked up until the agent restarts",
                Path.GetDirectoryName(Path.GetFullPath(settings.RegistriesPath)), settings.RegistriesPath);
            return;
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            await _debouncer.WaitAsync(Debounce, cancellationToken).ConfigureAwait(false);
            await ReloadAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Renders once and acts on the outcome.</summary>
    public async Task<RenderOutcome> ReloadAsync(CancellationToken cancellationToken)
    {
        RenderOutcome outcome;
        try
        {
            outcome = await ContainerdConfigRendering.RenderAsync(settings, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            outcome = new RenderOutcome([new RegistriesProblem(settings.RegistriesPath, 0, ProblemSeverity.Fatal, ex.Message)], null);
        }

        foreach (var problem in outcome.Problems)
        {
            _logger.Log(problem.Severity == ProblemSeverity.Warning ? LogLevel.Warning : LogLevel.Error, "{Problem}", problem.ToString());
        }

        if (!outcome.Rejected && Accepted is { } accepted && outcome.Registries is { } registries)
        {
            await accepted(registries, cancellationToken).ConfigureAwait(false);
        }

        if (outcome.Rejected)
        {
            _logger.LogError("{Registries} changed but cannot be used ({Count} problems above); containerd keeps its previous configuration",
                settings.RegistriesPath, outcome.Problems.Count(p => p.Severity >= ProblemSeverity.Error));
        }
        else if (outcome.ConfigChanged)
        {
            await restart($"{ContainerdRenderer.ConfigTomlName} changed after {settings.RegistriesPath} changed", cancellationToken).ConfigureAwait(false);
        }
        else if (outcome.HostsChanged)
        {
            _logger.LogInformation("{Registries} changed: hosts.toml updated under {CertsDir}; containerd uses it from the next pull, no restart needed",
                settings.RegistriesPath, settings.HostsTree);
        }
        else
        {
            _logger.LogInformation("{Registries} changed; the rendered containerd configuration is the same", settings.RegistriesPath);
        }

        Reloaded?.Invoke(outcome);
        return outcome;
    }

    public void Dispose() => _watcher?.Dispose();

    private void Signal() => _debouncer.Signal();
}
