using Airlock.Tls;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Remote;

/// <summary>How Airlock talks to registries: timeouts, retries, trust and credentials. Immutable; one per client.</summary>
public sealed record RemoteOptions
{
    /// <summary>
    /// Allows plain HTTP (after HTTPS fails) and unverified TLS for every host, like <c>--tls-verify=false</c>.
    /// Loopback hosts on a port other than 443 use plain HTTP regardless (K3s and containerd do the same).
    /// </summary>
    public bool Insecure { get; init; }

    /// <summary>How long a TCP (+TLS) connect may take before the endpoint is abandoned; kept short so a
    /// node-local mirror that is down costs little.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long to wait for response headers, and for each read of a blob body, before the request is
    /// treated as failed (and retried or resumed). <see cref="Timeout.InfiniteTimeSpan"/> disables it.</summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Attempts per request, the first included, for transient failures (connection errors, 408, 429, 5xx).</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>First retry delay; doubled per attempt, with full jitter.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Upper bound of one retry delay, including a server's Retry-After.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many times a blob download resumes (Range request) after its connection dropped.</summary>
    public int MaxBlobResumes { get; init; } = 5;

    /// <summary>Per-registry TLS settings, keyed by registry host as in registries.yaml <c>configs</c> (a port is ignored for matching).</summary>
    public IReadOnlyDictionary<string, TlsSettings> Tls { get; init; } =
        new Dictionary<string, TlsSettings>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Explicit base addresses by registry name (<c>"registry.example:5000" → https://10.0.0.5:5000/</c>), for
    /// registries.yaml endpoints that give a scheme; these win over the default and the loopback rule.
    /// </summary>
    public IReadOnlyDictionary<string, Uri> Endpoints { get; init; } = new Dictionary<string, Uri>(StringComparer.OrdinalIgnoreCase);

    public IRegistryCredentialSource Credentials { get; init; } = StaticCredentialSource.Anonymous;

    public string UserAgent { get; init; } = "airlock";

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>Wraps the shared socket handler (tests count bytes with it; a proxy or tracing layer could go here).</summary>
    internal Func<HttpMessageHandler, HttpMessageHandler>? WrapHandler { get; init; }
}
