using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace Airlock.Interop.Tests.Fixtures;

/// <summary>Which registry implementation an interop test talks to.</summary>
public enum RegistryKind
{
    /// <summary>This project's <c>airlock registry</c> verb, from the CLI build output.</summary>
    Airlock,

    /// <summary>Debian's docker-registry (distribution 2.8), the reference implementation.</summary>
    Distribution,
}

/// <summary>A user the registry's htpasswd file knows.</summary>
public sealed record RegistryCredentials(string Username, string Password)
{
    /// <summary><c>user:password</c> as skopeo's <c>--creds</c> and podman's <c>--creds</c> take it.</summary>
    public string CredsArgument => $"{Username}:{Password}";

    /// <summary>Writes a containers-auth.json (the format of podman login / skopeo --authfile) for <paramref name="host"/>.</summary>
    public void WriteAuthFile(string path, string host)
    {
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes(CredsArgument));
        var document = new Dictionary<string, object>
        {
            ["auths"] = new Dictionary<string, object> { [host] = new Dictionary<string, string> { ["auth"] = auth } },
        };
        File.WriteAllText(path, JsonSerializer.Serialize(document));
    }
}

/// <summary>How the registry under test is configured.</summary>
public sealed record RegistryOptions
{
    /// <summary>When set, the registry requires these credentials (htpasswd, bcrypt) for every request.</summary>
    public RegistryCredentials? RequiredCredentials { get; init; }

    /// <summary>Serve HTTPS with a fresh self-signed certificate for 127.0.0.1.</summary>
    public bool Tls { get; init; }

    /// <summary>
    /// Airlock only: serve HTTPS with <c>--tls-self-signed</c>, a server certificate issued by Airlock's own CA
    /// (<c>&lt;data-dir&gt;/registry/tls/ca.crt</c>, see <see cref="RegistryProcess.CaPath"/>).
    /// </summary>
    public bool SelfSignedTls { get; init; }

    /// <summary>
    /// Distribution only, with <see cref="Tls"/>: require a client certificate issued by a CA made for this
    /// registry (<c>http.tls.clientcas</c>); <see cref="RegistryProcess.ClientCertificatePath"/> holds one.
    /// </summary>
    public bool RequireClientCertificates { get; init; }

    /// <summary>Further <c>airlock registry</c> flags (token auth, access file, anonymous pull); Airlock only.</summary>
    public IReadOnlyList<string> AirlockArguments { get; init; } = [];
}

/// <summary>
/// A registry process on a free loopback port with its own temp data dir: either Airlock
/// (<c>airlock registry --listen … --data-dir …</c>) or distribution with a generated config.yml.
/// Tests are written against the OCI distribution API only, so they pass against both.
/// </summary>
public sealed class RegistryProcess : IAsyncDisposable
{
    /// <summary>
    /// The registry every interop test uses unless it asks for one. Distribution until the
    /// <c>airlock registry</c> verb is merged; the lead flips this to <see cref="RegistryKind.Airlock"/>
    /// then. <c>AIRLOCK_INTEROP_REGISTRY=airlock|distribution</c> overrides it for one run.
    /// </summary>
    public const RegistryKind DefaultKind = RegistryKind.Airlock;

    // A bound, not a wait: a registry answers in well under a second on a quiet machine, but a loaded full run (load
    // average 50, other engineers' builds) once needed more than 30 s for one to start.
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);
    private readonly ServerProcess _server;
    private readonly string _workDirectory;

    private RegistryProcess(RegistryKind kind, ServerProcess server, string workDirectory, int port, RegistryOptions options, X509Certificate2? certificate)
    {
        Kind = kind;
        _server = server;
        _workDirectory = workDirectory;
        Port = port;
        Options = options;
        Certificate = certificate;
    }

    /// <summary><see cref="DefaultKind"/> unless the environment asks for another registry.</summary>
    public static RegistryKind SelectedKind =>
        Environment.GetEnvironmentVariable("AIRLOCK_INTEROP_REGISTRY")?.ToLowerInvariant() switch
        {
            "airlock" => RegistryKind.Airlock,
            "distribution" => RegistryKind.Distribution,
            _ => DefaultKind,
        };

    public RegistryKind Kind { get; }

    public RegistryOptions Options { get; }

    public int Port { get; }

    public int Pid => _server.Pid;

    /// <summary><c>127.0.0.1:PORT</c>, the registry part of image references.</summary>
    public string Host => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>HTTPS, with <see cref="RegistryOptions.Tls"/> or <see cref="RegistryOptions.SelfSignedTls"/>.</summary>
    public bool UsesTls => Options.Tls || Options.SelfSignedTls;

    public Uri BaseAddress => new($"{(UsesTls ? "https" : "http")}://{Host}/");

    /// <summary>The PEM file a client must trust to verify this registry's certificate (null without TLS).</summary>
    public string? CaPath => Options.SelfSignedTls
        ? Path.Combine(DataDirectory, "registry", "tls", "ca.crt")
        : Options.Tls ? Path.Combine(_workDirectory, "tls.crt") : null;

    /// <summary>A client certificate the registry accepts, with <see cref="RegistryOptions.RequireClientCertificates"/>.</summary>
    public string ClientCertificatePath => Path.Combine(CertificateDirectory, "client.cert");

    public string ClientKeyPath => Path.Combine(CertificateDirectory, "client.key");

    /// <summary>The self-signed server certificate when <see cref="RegistryOptions.Tls"/> is on.</summary>
    public X509Certificate2? Certificate { get; }

    /// <summary>
    /// A folder holding <c>ca.crt</c> (what verifies the server) and, when the registry requires one, the client
    /// certificate as <c>client.cert</c>/<c>client.key</c>: the layout of skopeo's/podman's <c>--cert-dir</c>.
    /// </summary>
    public string CertificateDirectory => Path.Combine(_workDirectory, "client-certs");

    public string RecentOutput => _server.RecentOutput;

    /// <summary>The registry's storage (deleted when the fixture is disposed).</summary>
    public string DataDirectory => Path.Combine(_workDirectory, "data");

    public static async Task<RegistryProcess> StartAsync(RegistryKind? kind = null, RegistryOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var selected = kind ?? SelectedKind;
        options ??= new RegistryOptions();
        if (options.SelfSignedTls && (selected != RegistryKind.Airlock || options.Tls))
        {
            throw new ArgumentException("SelfSignedTls is airlock registry's --tls-self-signed; it excludes Tls", nameof(options));
        }

        if (options.RequireClientCertificates && (selected != RegistryKind.Distribution || !options.Tls))
        {
            throw new ArgumentException("RequireClientCertificates needs the Distribution registry with Tls", nameof(options));
        }
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnFreePortAsync(selected, options, cancellationToken);
            }
            catch (InvalidOperationException ex) when (attempt < 3 && ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                // Another test took the "free" port between our probe and the server's bind: pick again.
            }
        }
    }

    private static async Task<RegistryProcess> StartOnFreePortAsync(RegistryKind selected, RegistryOptions options, CancellationToken cancellationToken)
    {
        var work = Directory.CreateTempSubdirectory("airlock-registry-").FullName;
        try
        {
            var dataDirectory = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
            var port = ServerProcess.FreeLoopbackPort();
            var htpasswd = options.RequiredCredentials is { } credentials ? WriteHtpasswd(work, credentials) : null;
            var certificate = options.Tls ? WriteSelfSignedCertificate(work) : null;
            var clientCa = options.RequireClientCertificates ? WriteClientCertificate(work) : null;
            List<string> airlockArguments = [.. options.AirlockArguments, .. options.SelfSignedTls ? ["--tls-self-signed"] : Array.Empty<string>()];
            var server = selected switch
            {
                RegistryKind.Airlock => StartAirlock(port, dataDirectory, htpasswd, work, options.Tls, airlockArguments),
                _ => StartDistribution(port, dataDirectory, htpasswd, work, options.Tls, clientCa),
            };
            var registry = new RegistryProcess(selected, server, work, port, options, certificate);
            try
            {
                await registry.WaitUntilServingAsync(cancellationToken);
                if (options.SelfSignedTls)
                {
                    Directory.CreateDirectory(registry.CertificateDirectory);
                    File.Copy(registry.CaPath!, Path.Combine(registry.CertificateDirectory, "ca.crt"));
                }
            }
            catch
            {
                await registry.DisposeAsync();
                throw;
            }

            return registry;
        }
        catch
        {
            DeleteQuietly(work);
            throw;
        }
    }

    /// <summary>An HttpClient that talks to this registry (trusting its self-signed certificate when TLS is on).</summary>
    public HttpClient CreateHttpClient()
    {
        var handler = new SocketsHttpHandler();
        if (Certificate is { } certificate)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) =>
                presented is not null && presented.GetCertHashString() == certificate.GetCertHashString();
        }
        else if (Options.SelfSignedTls)
        {
            // The CA is read at the first handshake: airlock writes it while starting.
            handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) =>
            {
                if (presented is null || !File.Exists(CaPath))
                {
                    return false;
                }

                using var ca = X509CertificateLoader.LoadCertificateFromFile(CaPath);
                using var leaf = new X509Certificate2(presented);
                return Airlock.Tls.CertificateTrust.ChainsTo(leaf, [ca], DateTimeOffset.UtcNow);
            };
        }

        if (Options.RequireClientCertificates)
        {
            handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPemFile(ClientCertificatePath, ClientKeyPath)];
        }

        return new HttpClient(handler) { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Certificate?.Dispose();
        DeleteQuietly(_workDirectory);
    }

    /// <summary>The Airlock CLI built next to this test assembly's configuration (Debug or Release).</summary>
    public static string AirlockCliPath()
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testOutput.Parent?.Name ?? "Release";
        for (var directory = testOutput; directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Airlock.slnx")))
            {
                var cli = Path.Combine(directory.FullName, "src", "Airlock.Cli", "bin", configuration, "net10.0", "airlock");
                if (File.Exists(cli))
                {
                    return cli;
                }

                break;
            }
        }

        // The test project references the CLI, so its apphost is also copied next to the tests.
        var copied = Path.Combine(AppContext.BaseDirectory, "airlock");
        return File.Exists(copied)
            ? copied
            : throw new FileNotFoundException($"the airlock CLI was not found for configuration {configuration}; build src/Airlock.Cli first");
    }

    private static ServerProcess StartAirlock(int port, string dataDirectory, string? htpasswd, string work, bool tls, IReadOnlyList<string> extra)
    {
        List<string> arguments = ["registry", "--listen", $"127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}", "--data-dir", dataDirectory, .. extra];
        if (htpasswd is not null)
        {
            arguments.AddRange(["--htpasswd", htpasswd]);
        }

        if (tls)
        {
            arguments.AddRange(["--tls-cert", Path.Combine(work, "tls.crt"), "--tls-key", Path.Combine(work, "tls.key")]);
        }

        // Keep the registry independent of the machine's /etc/airlock/config.yaml.
        var config = Path.Combine(work, "config.yaml");
        File.WriteAllText(config, "{}\n");
        return ServerProcess.Start(AirlockCliPath(), arguments, new Dictionary<string, string> { ["AIRLOCK_CONFIG"] = config });
    }

    private static ServerProcess StartDistribution(int port, string dataDirectory, string? htpasswd, string work, bool tls, string? clientCa)
    {
        var config = new StringBuilder();
        config.Append(CultureInfo.InvariantCulture, $"""
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {dataDirectory}
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: 127.0.0.1:{port}
              secret: airlock-interop-tests

            """);
        if (tls)
        {
            config.Append(CultureInfo.InvariantCulture, $"""
                  tls:
                    certificate: {Path.Combine(work, "tls.crt")}
                    key: {Path.Combine(work, "tls.key")}

                """);
            if (clientCa is not null)
            {
                config.Append(CultureInfo.InvariantCulture, $"""
                        clientcas:
                          - {clientCa}

                    """);
            }
        }

        if (htpasswd is not null)
        {
            config.Append(CultureInfo.InvariantCulture, $"""
                auth:
                  htpasswd:
                    realm: airlock-interop
                    path: {htpasswd}

                """);
        }

        var configPath = Path.Combine(work, "config.yml");
        File.WriteAllText(configPath, config.ToString());
        return ServerProcess.Start("docker-registry", ["serve", configPath]);
    }

    private static string WriteHtpasswd(string work, RegistryCredentials credentials)
    {
        // Cost 5 instead of the usual 10: distribution checks the password on every request, and the
        // suite makes hundreds of them; the format (bcrypt $2a$) is what matters here, not the cost.
        var path = Path.Combine(work, "htpasswd");
        File.WriteAllText(path, $"{credentials.Username}:{BCrypt.Net.BCrypt.HashPassword(credentials.Password, workFactor: 5)}\n");
        return path;
    }

    private static X509Certificate2 WriteSelfSignedCertificate(string work)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        File.WriteAllText(Path.Combine(work, "tls.crt"), certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(work, "tls.key"), key.ExportPkcs8PrivateKeyPem());
        var clientCerts = Directory.CreateDirectory(Path.Combine(work, "client-certs")).FullName;
        File.WriteAllText(Path.Combine(clientCerts, "ca.crt"), certificate.ExportCertificatePem());
        return certificate;
    }

    /// <summary>
    /// A CA made for this registry alone and a client certificate it issued, written as skopeo's cert-dir expects
    /// (<c>client-certs/client.cert</c>, <c>client.key</c>). Returns the CA's path for <c>clientcas</c>.
    /// </summary>
    private static string WriteClientCertificate(string work)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=airlock interop client CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, critical: true));
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));

        using var clientKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var clientRequest = new CertificateRequest("CN=airlock interop node", clientKey, HashAlgorithmName.SHA256);
        clientRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        clientRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        using var client = clientRequest.Create(ca, now.AddMinutes(-5), now.AddDays(1), [1, 2, 3, 4, 5, 6, 7, 8]);

        var caPath = Path.Combine(work, "client-ca.crt");
        File.WriteAllText(caPath, ca.ExportCertificatePem());
        var clientCerts = Directory.CreateDirectory(Path.Combine(work, "client-certs")).FullName;
        File.WriteAllText(Path.Combine(clientCerts, "client.cert"), client.ExportCertificatePem());
        File.WriteAllText(Path.Combine(clientCerts, "client.key"), clientKey.ExportPkcs8PrivateKeyPem());
        return caPath;
    }

    private async Task WaitUntilServingAsync(CancellationToken cancellationToken)
    {
        using var client = CreateHttpClient();
        client.Timeout = TimeSpan.FromSeconds(2);
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            _server.EnsureRunning();
            try
            {
                using var response = await client.GetAsync("v2/", cancellationToken);
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // A single probe timed out; the deadline below decides.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{Kind} registry on {Host} did not answer GET /v2/ within {StartTimeout.TotalSeconds:0}s:\n{_server.RecentOutput}");
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    private static void DeleteQuietly(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
