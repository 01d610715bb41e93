using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Registry.Auth;

/// <summary>How the registry authenticates: the <c>airlock registry</c> flags, bound as they are.</summary>
public sealed record RegistryAuthOptions
{
    /// <summary><c>--htpasswd FILE</c>: users (bcrypt, <c>htpasswd -B</c>). Null: no authentication at all.</summary>
    public string? HtpasswdPath { get; init; }

    /// <summary><c>--access FILE</c>: per-user repository rules (see <see cref="AccessPolicy"/>).</summary>
    public string? AccessPath { get; init; }

    /// <summary><c>--anonymous-pull</c>: pulls (and the /v2/ check) need no credentials.</summary>
    public bool AnonymousPull { get; init; }

    /// <summary><c>--auth token</c>: Docker/OCI bearer tokens from <c>/token</c> instead of Basic on every request.</summary>
    public bool UseTokens { get; init; }

    /// <summary>Token signing key, e.g. <c>&lt;data-dir&gt;/registry/token/key.pem</c>; required with <see cref="UseTokens"/>.</summary>
    public string? TokenKeyPath { get; init; }

    /// <summary>
    /// Repositories only authenticated users may access, even with <c>--anonymous-pull</c> or an access file
    /// that lets anonymous users pull (the cache of a private pull-through upstream).
    /// </summary>
    public Func<string, bool>? AuthenticatedOnly { get; init; }

    /// <summary>Token settings (realm = <c>&lt;external URL&gt;/token</c>, service, lifetime).</summary>
    public TokenAuthOptions Token { get; init; } = new();
}

/// <summary>
/// The registry's authentication assembled from <see cref="RegistryAuthOptions"/>: the
/// <see cref="IAccessController"/> for /v2 requests and, in token mode, the <see cref="TokenEndpoint"/>
/// to map at <see cref="TokenAuthOptions.TokenPath"/>.
/// </summary>
public sealed class RegistryAuthentication : IDisposable
{
    private readonly TokenAuthority? _authority;

    private RegistryAuthentication(IAccessController accessController, TokenAuthority? authority, TokenEndpoint? tokenEndpoint, IAccessController? consoleAccessController = null)
    {
        AccessController = accessController;
        ConsoleAccessController = consoleAccessController ?? accessController;
        _authority = authority;
        TokenEndpoint = tokenEndpoint;
    }

    public IAccessController AccessController { get; }

    /// <summary>
    /// For the console (<c>/ui/</c>) and the JSON API (<c>/api/</c>): the same users and access rules, but always
    /// HTTP Basic, the one scheme a browser speaks by itself; in token mode the /v2 API keeps its bearer tokens.
    /// </summary>
    public IAccessController ConsoleAccessController { get; }

    /// <summary>Non-null in token mode: map it with <see cref="TokenEndpointRouteBuilderExtensions.MapRegistryTokenEndpoint"/>.</summary>
    public TokenEndpoint? TokenEndpoint { get; }

    /// <summary>
    /// Reads the files and builds the controllers. Throws <see cref="AuthConfigurationException"/> with
    /// every problem at once (bad htpasswd lines, bad access-file rules, flags that need <c>--htpasswd</c>).
    /// </summary>
    public static RegistryAuthentication Create(RegistryAuthOptions options, TimeProvider timeProvider, ILoggerFactory? loggerFactory = null)
    {
        loggerFactory ??= NullLoggerFactory.Instance;
        var problems = new List<string>();
        if (options.HtpasswdPath is null)
        {
            foreach (var (set, flag) in new[] { (options.AccessPath is not null, "--access"), (options.AnonymousPull, "--anonymous-pull"), (options.UseTokens, "--auth token") })
            {
                if (set)
                {
                    problems.Add($"{flag} needs --htpasswd (without it the registry has no users and allows everything)");
                }
            }

            return problems.Count > 0
                ? throw new AuthConfigurationException(problems)
                : new RegistryAuthentication(AllowAllAccessController.Instance, null, null);
        }

        if (options.UseTokens && options.TokenKeyPath is null)
        {
            problems.Add("token authentication needs a signing key path");
        }

        var users = Collect(problems, () => new HtpasswdFile(options.HtpasswdPath, timeProvider, loggerFactory.CreateLogger<HtpasswdFile>()));
        var policy = options.AccessPath is null
            ? AccessPolicy.Create(options.AnonymousPull)
            : Collect(problems, () => AccessPolicy.Load(options.AccessPath, options.AnonymousPull));
        if (problems.Count > 0)
        {
            throw new AuthConfigurationException(problems);
        }

        policy!.RequireAuthenticationFor(options.AuthenticatedOnly);
        if (!options.UseTokens)
        {
            return new RegistryAuthentication(new BasicAccessController(users!, policy!, loggerFactory.CreateLogger<BasicAccessController>()), null, null);
        }

        var authority = TokenAuthority.LoadOrCreate(options.TokenKeyPath!, options.Token, timeProvider);
        return new RegistryAuthentication(
            new TokenAccessController(authority, policy!),
            authority,
            new TokenEndpoint(authority, users!, policy!, loggerFactory.CreateLogger<TokenEndpoint>()),
            new BasicAccessController(users!, policy!, loggerFactory.CreateLogger<BasicAccessController>()));
    }

    public void Dispose() => _authority?.Dispose();

    private static T? Collect<T>(List<string> problems, Func<T> read)
        where T : class
    {
        try
        {
            return read();
        }
        catch (AuthConfigurationException e)
        {
            problems.AddRange(e.Problems);
            return null;
        }
    }
}
