using System.CommandLine;
using System.Globalization;
using System.Net;
using Airlock.Cli.Hosting;
using Airlock.Content;
using Airlock.Content.FileSystemStore;
using Airlock.Registry;
using Airlock.Registry.Auth;
using Airlock.Registry.PullThrough;
using Airlock.Remote;
using Airlock.Tls;
using Microsoft.Extensions.Logging;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock registry</c>: serve the OCI distribution API; <c>airlock registry gc</c>: collect garbage offline or beside a running registry.</summary>
internal static class RegistryCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen") { Description = "Address and port to serve on (host:port, [v6]:port or :port).", DefaultValueFactory = _ => "0.0.0.0:5000" };
        var dataDir = CommonOptions.DataDir();
        var tlsCert = new PathOption("--tls-cert", PathKind.File, "PEM certificate (chain) to serve HTTPS with; needs --tls-key.");
        var tlsKey = new PathOption("--tls-key", PathKind.File, "PEM private key of --tls-cert.");
        var readOnly = new Option<bool>("--read-only") { Description = "Refuse every push and delete (405), for maintenance or a mirror." };
        var maxManifest = new Option<int>("--max-manifest-bytes") { Description = "Largest manifest accepted (413 above it).", DefaultValueFactory = _ => RegistryServerOptions.DefaultMaxManifestBytes };
        var gcInterval = new DurationOption("--gc-interval", "Run garbage collection this often while serving (e.g. 24h, 30m; 0 or off disables).", "24h") { AllowsOff = true };
        var gcGrace = GraceOption();
        var tlsSelfSigned = new Option<bool>("--tls-self-signed") { Description = "Serve HTTPS with a certificate from Airlock's own CA under <data-dir>/registry/tls (created once, renewed within 120 days of expiry); prints the CA path and the registries.yaml snippet nodes need." };
        var tlsSan = new Option<string[]>("--tls-san") { Description = "Extra DNS name or IP for the self-signed server certificate (repeatable).", AllowMultipleArgumentsPerToken = false };
        var htpasswd = new PathOption("--htpasswd", PathKind.File, "Users file as `htpasswd -B` writes it (bcrypt); every request then needs credentials.");
        var access = new PathOption("--access", PathKind.File, "YAML access file limiting users to repositories and actions (needs --htpasswd).");
        var anonymousPull = new Option<bool>("--anonymous-pull") { Description = "With --htpasswd: let anyone pull; push and delete still need credentials." };
        var authMode = new Option<string>("--auth") { Description = "How clients authenticate with --htpasswd: basic (credentials on every request) or token (Bearer tokens from /token, the Docker token flow).", DefaultValueFactory = _ => "basic" };
        authMode.AcceptOnlyFromAmong("basic", "token");
        var tokenRealm = new Option<string?>("--token-realm") { Description = "Token endpoint URL announced to clients (default: <scheme>://<host of the request>/token)." };
        var proxy = new Option<string[]>("--proxy") { Description = "Pull-through cache: REGISTRY=URL fetches that registry's images from URL on a miss and stores them (repeatable; '*'=URL for every other registry). Clients pick the registry with ?ns= (containerd does) or a REGISTRY/ path prefix.", AllowMultipleArgumentsPerToken = false };
        var proxyTagTtl = new DurationOption("--proxy-tag-ttl", "How long a cached tag is served before the upstream is asked again (digests never expire; the cached tag is served while the upstream is down).", "5m");
        var proxyTimeout = new DurationOption("--proxy-timeout", "Connect and response timeout of each upstream request; a cold miss on an unreachable upstream fails (502) within about twice this.", "10s") { Positive = true };
        var ui = new Option<bool>("--ui")
        {
            Description = "Serve the web console under /ui/ (behind the same authentication as /v2/); --ui=false turns it off. The JSON API under /api/v1 stays.",
            DefaultValueFactory = _ => true,
        };
        var shared = new SharedStoreFlags();
        var registries = new PathOption("--registries", PathKind.File,
            "registries.yaml (K3s format) whose configs give the --proxy upstreams credentials and TLS, keyed by upstream host[:port]. Needs --htpasswd when it has credentials for an upstream.");

        var command = new Command("registry", "Serve an OCI Distribution v1.1 registry (push, pull, referrers, catalog) from the data directory.")
        {
            listen, dataDir, tlsCert, tlsKey, tlsSelfSigned, tlsSan, readOnly, maxManifest, gcInterval, gcGrace,
            htpasswd, access, anonymousPull, authMode, tokenRealm, proxy, proxyTagTtl, proxyTimeout, registries, ui,
        };
        foreach (var option in shared.All(server: true))
        {
            command.Options.Add(option);
        }

        command.WithExamples(
            "airlock registry",
            "airlock registry --listen 127.0.0.1:5000 --data-dir /srv/airlock",
            "airlock registry --tls-cert /etc/airlock/tls/registry.crt --tls-key /etc/airlock/tls/registry.key",
            "airlock registry --read-only --gc-interval off",
            "airlock registry --htpasswd /etc/airlock/htpasswd --ui=false",
            "airlock registry --tls-self-signed --tls-san registry.airgap.local",
            "airlock registry --htpasswd /etc/airlock/htpasswd --anonymous-pull",
            "airlock registry --htpasswd /etc/airlock/htpasswd --access /etc/airlock/access.yaml --auth token",
            "airlock registry --proxy docker.io=https://registry-1.docker.io --proxy '*'=https://mirror.example --proxy-tag-ttl 10m",
            "airlock registry --proxy quay.io=https://quay.io --registries /etc/airlock/registries.yaml --htpasswd /etc/airlock/htpasswd",
            "airlock registry --storage 's3://registry?endpoint=http://rgw.site:7480&path-style=true' --metadata etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379 --s3-redirect",
            "airlock registry --storage 's3://registry?endpoint=http://rgw.site:7480&path-style=true' --s3-credentials /etc/airlock/s3-credentials");
        command.Subcommands.Add(CreateGc());

        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var problems = new List<string>();
            if (!RegistryServer.TryParseListen(parseResult.GetValue(listen)!, out var endPoint))
            {
                problems.Add($"--listen \"{parseResult.GetValue(listen)}\" is not host:port");
            }

            var upstreams = new List<PullThroughUpstream>();
            foreach (var value in parseResult.GetValue(proxy) ?? [])
            {
                if (PullThroughUpstream.TryParse(value, out var upstream, out var error))
                {
                    upstreams.Add(upstream!);
                }
                else
                {
                    problems.Add(error);
                }
            }

            var registriesPath = parseResult.GetValue(registries);
            if (registriesPath is not null && upstreams.Count == 0)
            {
                problems.Add("--registries gives credentials for --proxy upstreams; it needs at least one --proxy");
            }

            Uri? realm = null;
            if (parseResult.GetValue(tokenRealm) is { } realmValue && !Uri.TryCreate(realmValue, UriKind.Absolute, out realm))
            {
                problems.Add($"--token-realm \"{realmValue}\" is not an absolute URL (e.g. https://registry.example/token)");
            }

            var sharedStore = shared.Read(parseResult, parseResult.GetValue(dataDir)!, problems);
            ThrowIfAny(problems);

            // The registries file is read only once the flags are known to be usable, and fails with its own error (exit 1).
            var pullThrough = upstreams.Count == 0 ? null : new PullThroughOptions
            {
                Upstreams = upstreams,
                TagTtl = proxyTagTtl.GetDuration(parseResult),
                Timeout = proxyTimeout.GetDuration(parseResult),
                Remote = registriesPath is null ? new RemoteOptions() : RegistryAccessOptions.ApplyRegistriesFile(new RemoteOptions(), registriesPath),
            };
            var settings = new RegistrySettings
            {
                Server = new RegistryServerOptions
                {
                    DataDirectory = parseResult.GetValue(dataDir)!,
                    Listen = endPoint,
                    ReadOnly = parseResult.GetValue(readOnly),
                    MaxManifestBytes = parseResult.GetValue(maxManifest),
                    GcInterval = gcInterval.GetDurationOrOff(parseResult),
                    GcGrace = gcGrace.GetDuration(parseResult),
                    PullThrough = pullThrough,
                    Console = parseResult.GetValue(ui),
                    SharedStore = sharedStore,
                },
                Auth = new RegistryAuthOptions
                {
                    HtpasswdPath = parseResult.GetValue(htpasswd),
                    AccessPath = parseResult.GetValue(access),
                    AnonymousPull = parseResult.GetValue(anonymousPull),
                    UseTokens = parseResult.GetValue(authMode) == "token",
                    Token = new TokenAuthOptions { Realm = realm },
                },
                TlsCertificatePath = parseResult.GetValue(tlsCert),
                TlsKeyPath = parseResult.GetValue(tlsKey),
                TlsSelfSigned = parseResult.GetValue(tlsSelfSigned),
                TlsSubjectAlternativeNames = parseResult.GetValue(tlsSan) ?? [],
            };
            ThrowIfAny(settings.Validate());

            using var loggerFactory = CliLogging.CreateFactory();
            using var stop = StopSignals.Register(cancellationToken);
            await using var server = await RegistryServer.StartAsync(settings, loggerFactory, cancellationToken).ConfigureAwait(false);
            if (server.Tls?.CaCertificatePath is { } caPath)
            {
                await PrintTrustAsync(parseResult.InvocationConfiguration.Output, server.Tls, caPath, endPoint).ConfigureAwait(false);
            }

            await stop.WaitAsync().ConfigureAwait(false);
            await server.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command CreateGc()
    {
        // Collecting in a directory that does not exist can only be a typo: the default may be absent, a given one not.
        var dataDir = CommonOptions.ExistingDataDir();
        var grace = GraceOption();
        var dryRun = new Option<bool>("--dry-run") { Description = "Only print what would be removed." };
        var output = CommonOptions.Output("text");
        var shared = new SharedStoreFlags();
        var command = new Command("gc", "Remove blobs no manifest references, stale repository links and abandoned uploads older than the grace period.")
        {
            dataDir, grace, dryRun, output,
        };
        foreach (var option in shared.All(server: false))
        {
            command.Options.Add(option);
        }

        command.WithExamples(
            "airlock registry gc --storage 's3://registry?endpoint=http://rgw.site:7480&path-style=true' --metadata etcd://10.0.0.1:2379",
            "airlock registry gc --dry-run",
            "airlock registry gc --data-dir /srv/airlock --gc-grace 0s",
            "airlock registry gc --output json");
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var graceValue = grace.GetDuration(parseResult);
            var problems = new List<string>();
            var sharedStore = shared.Read(parseResult, parseResult.GetValue(dataDir)!, problems);
            ThrowIfAny(problems);
            using var loggerFactory = CliLogging.CreateFactory();
            var logger = loggerFactory.CreateLogger("Airlock.Registry.GarbageCollection");
            // Beside a running registry this coordinates with it through lock files (see GarbageCollectionGuard).
            await using var storage = await RegistryServer.OpenStoreForCollectionAsync(parseResult.GetValue(dataDir)!, sharedStore, logger, cancellationToken).ConfigureAwait(false);
            GarbageCollectionResult result;
            try
            {
                result = await new GarbageCollector(storage, graceValue, logger)
                    .CollectAsync(parseResult.GetValue(dryRun), cancellationToken).ConfigureAwait(false);
            }
            catch (GarbageCollectionBusyException ex)
            {
                await parseResult.InvocationConfiguration.Error.WriteLineAsync($"airlock: {ex.Message}").ConfigureAwait(false);
                return AirlockCli.ExitError;
            }

            Print(parseResult.InvocationConfiguration.Output, result, parseResult.GetValue(output)!);
            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static void Print(TextWriter output, GarbageCollectionResult result, string format)
    {
        var verb = result.DryRun ? "would remove" : "removed";
        if (format is "json" or "yaml")
        {
            var report = new GarbageCollectionReport(
                result.DryRun,
                result.MarkedBlobs,
                result.DeletedBlobs.Select(d => d.ToString()).ToArray(),
                result.DeletedBytes,
                result.DeletedLinks.Select(l => $"{l.Repository}@{l.Digest}").ToArray(),
                result.DeletedUploads.ToArray())
            {
                Repositories = result.DeletedRepositories,
            };
            DataOutput.Write(output, format, report, CliJson.Default.GarbageCollectionReport);
            return;
        }

        if (format is "table")
        {
            var rows = result.DeletedBlobs.Select(b => ("blob", b.ToString()))
                .Concat(result.DeletedLinks.Select(l => ("link", $"{l.Repository}@{l.Digest}")))
                .Concat(result.DeletedRepositories.Select(r => ("repository", r)))
                .Concat(result.DeletedUploads.Select(u => ("upload", u)))
                .ToList();
            DataOutput.WriteTable(output, rows, ("ACTION", _ => verb), ("KIND", r => r.Item1), ("NAME", r => r.Item2));
            return;
        }

        foreach (var blob in result.DeletedBlobs)
        {
            output.WriteLine($"{verb} blob {blob}");
        }

        foreach (var (repository, digest) in result.DeletedLinks)
        {
            output.WriteLine($"{verb} link {repository}@{digest}");
        }

        foreach (var repository in result.DeletedRepositories)
        {
            output.WriteLine($"{verb} repository {repository}");
        }

        foreach (var upload in result.DeletedUploads)
        {
            output.WriteLine($"{verb} upload {upload}");
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{result.MarkedBlobs} blobs in use; {verb} {result.DeletedBlobs.Count} blobs ({result.DeletedBytes} bytes), {result.DeletedLinks.Count} links, {result.DeletedRepositories.Count} repositories, {result.DeletedUploads.Count} uploads"));
    }

    private static void ThrowIfAny(IReadOnlyList<string> problems)
    {
        if (problems.Count > 0)
        {
            throw new UsageException(string.Join(Environment.NewLine + "airlock: ", problems));
        }
    }

    /// <summary>What a node needs to trust a registry serving a certificate of Airlock's own CA.</summary>
    private static async Task PrintTrustAsync(TextWriter output, ServerTlsMaterial tls, string caPath, IPEndPoint endPoint)
    {
        var host = endPoint.Address.Equals(IPAddress.Any) || endPoint.Address.Equals(IPAddress.IPv6Any)
            ? Dns.GetHostName()
            : endPoint.Address.ToString();
        await output.WriteLineAsync($"TLS CA certificate: {caPath}").ConfigureAwait(false);
        await output.WriteLineAsync("Trust it on each node with this in /etc/airlock/registries.yaml (copy the CA file there too):").ConfigureAwait(false);
        await output.WriteLineAsync(RegistryCertificate.RenderRegistriesYaml($"{host}:{endPoint.Port.ToString(CultureInfo.InvariantCulture)}", caPath)).ConfigureAwait(false);
    }

    private static DurationOption GraceOption() =>
        new("--gc-grace", "Never collect blobs, links or uploads younger than this, so pushes in flight survive (e.g. 1h, 30m).", "1h");
}
