using System.CommandLine;
using Airlock.Bundles.Transfer;
using Airlock.Cli.Hosting;
using Airlock.Node;
using Airlock.Remote;

namespace Airlock.Cli.Commands;

/// <summary>
/// The flags every verb that talks to registries shares (<c>--insecure</c>, <c>--creds</c>,
/// <c>--registries</c>), turned into the registry client the bundles graph walk reads from and writes to.
/// </summary>
internal sealed class RegistryAccessOptions
{
    private readonly Option<bool> _insecure = new("--insecure")
    {
        Description = "Allow plain HTTP and unverified TLS for registries (loopback registries on ports other than 443 use HTTP anyway, as containerd does).",
    };

    private readonly Option<string?> _creds = new("--creds")
    {
        Description = "user:password for every registry (overrides registries.yaml credentials).",
    };

    private readonly PathOption _registries = new("--registries", PathKind.File,
        "registries.yaml (K3s format) whose configs give per-registry credentials and TLS (ca_file, cert_file/key_file, insecure_skip_verify).");

    private readonly DurationOption _connectTimeout = new("--connect-timeout", "Give up connecting to a registry after this long (e.g. 500ms, 10s, 1m).", "10s") { Positive = true };

    private string? _defaultRegistries;

    /// <summary>
    /// Adds the flags. With <paramref name="defaultRegistries"/>, that file is used when <c>--registries</c> is not
    /// given and it exists (the agent reads <c>/etc/airlock/registries.yaml</c> as K3s reads its own).
    /// </summary>
    public static RegistryAccessOptions AddTo(Command command, string? defaultRegistries = null)
    {
        var access = new RegistryAccessOptions { _defaultRegistries = defaultRegistries };
        if (defaultRegistries is not null)
        {
            access._registries.Description += $" Default: {defaultRegistries} when it exists.";
        }

        command.Options.Add(access._insecure);
        command.Options.Add(access._creds);
        command.Options.Add(access._registries);
        command.Options.Add(access._connectTimeout);
        return access;
    }

    /// <summary>
    /// Opens registries lazily: verbs that never touch a registry never read the files. The registries file is read
    /// again when it has changed since, so a long-running agent pulls with the credentials and TLS in force now.
    /// </summary>
    public RegistryConnector Connect(ParseResult parseResult)
    {
        var gate = new Lock();
        RemoteOptions? cached = null;
        (DateTime, long) readAt = default;
        RemoteOptions Current()
        {
            var path = RegistriesPath(parseResult);
            var file = path is null ? null : new FileInfo(path);
            var stamp = file is { Exists: true } ? (file.LastWriteTimeUtc, file.Length) : default;
            lock (gate)
            {
                if (cached is null || stamp != readAt)
                {
                    cached = Options(parseResult);
                    readAt = stamp;
                }

                return cached;
            }
        }

        return new RegistryConnector(
            reference => RemoteImageStore.Create(reference, Current()),
            reference => RemoteImageStore.Create(reference, Current()))
        {
            ReportLoad = async (registry, report, cancellationToken) =>
            {
                using var client = new RegistryClient(Current());
                try
                {
                    await client.ReportLoadAsync(registry, report, cancellationToken).ConfigureAwait(false);
                }
                catch (RegistryException ex)
                {
                    await parseResult.InvocationConfiguration.Error.WriteLineAsync(
                        $"airlock: warning: the images are loaded, but {registry} did not record the load for its console: {ex.Message}").ConfigureAwait(false);
                }
            },
        };
    }

    /// <summary>The registries.yaml in effect: <c>--registries</c>, else the default given to <see cref="AddTo"/> (which may not exist).</summary>
    public string? RegistriesPath(ParseResult parseResult) => parseResult.GetValue(_registries) ?? _defaultRegistries;

    /// <summary>Whether <c>--registries</c> was given (command line, environment or config.yaml) rather than defaulted.</summary>
    public bool RegistriesGiven(ParseResult parseResult) => parseResult.GetResult(_registries) is { Implicit: false };

    /// <summary>The client settings the flags give, for verbs that hold one client themselves.</summary>
    public RemoteOptions Options(ParseResult parseResult)
    {
        var options = new RemoteOptions { Insecure = parseResult.GetValue(_insecure), ConnectTimeout = _connectTimeout.GetDuration(parseResult) };
        var path = parseResult.GetValue(_registries);
        if (path is null && _defaultRegistries is { } fallback && File.Exists(fallback))
        {
            path = fallback;
        }

        if (path is not null)
        {
            options = ApplyRegistriesFile(options, path);
        }

        if (parseResult.GetValue(_creds) is { } creds)
        {
            options = RegistryHosts.Apply(options, [new RegistryHostSettings { Registry = RegistryHosts.EveryRegistry, Credential = RegistryCredential.ParseUserPass(creds) }]);
        }

        return options;
    }

    /// <summary>
    /// The <c>configs</c> of a registries.yaml (credentials, TLS) applied to <paramref name="options"/>. Throws
    /// <see cref="FileNotFoundException"/> or <see cref="InvalidDataException"/> (every error, with its line).
    /// </summary>
    public static RemoteOptions ApplyRegistriesFile(RemoteOptions options, string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"registries file {path} does not exist", path);
        }

        var (file, problems) = RegistriesFileReader.Parse(File.ReadAllText(path), path);
        var errors = problems.Where(p => p.Severity == ProblemSeverity.Error).ToList();
        if (errors.Count > 0)
        {
            throw new InvalidDataException(string.Join(Environment.NewLine, errors.Select(p => p.ToString())));
        }

        return RegistriesClientOptions.Apply(options, file);
    }
}
