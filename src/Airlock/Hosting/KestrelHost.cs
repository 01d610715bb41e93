using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Hosting;

/// <summary>How one of Airlock's HTTP servers listens (the registry, the node mirror; next the cluster server and peers).</summary>
public sealed record KestrelHostOptions
{
    public required IPEndPoint Listen { get; init; }

    /// <summary>Serve HTTPS (HTTP/1.1 and HTTP/2) with this certificate, which carries its key; plain HTTP/1.1 when null.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>Intermediates sent after <see cref="Certificate"/> (an operator's chain file).</summary>
    public X509Certificate2Collection? CertificateChain { get; init; }

    /// <summary>
    /// When set, clients may present a certificate, which this decides on (the embedded registry and the cluster's
    /// peers accept the cluster's client CA); a client without one still connects, and the handler decides.
    /// </summary>
    public Func<X509Certificate2, X509Chain?, SslPolicyErrors, bool>? ClientCertificateValidation { get; init; }

    /// <summary>
    /// When set (instead of <see cref="Certificate"/>), the TLS options of each connection, asked at its handshake: a
    /// server whose certificates renew while it runs (the peer mirror) serves the current ones without a restart.
    /// </summary>
    public Func<SslServerAuthenticationOptions>? TlsPerConnection { get; init; }

    /// <summary>HTTP/1.1 only, also over TLS (peers stream one blob per connection; no HTTP/2 framing on the way).</summary>
    public bool Http1Only { get; init; }

    /// <summary>How long stopping waits for requests in flight.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Largest request body; null for none (blob pushes are streamed and bounded by the store).</summary>
    public long? MaxRequestBodySize { get; init; } = 30_000_000;

    /// <summary>Response bytes Kestrel buffers per connection before a write waits; null for Kestrel's default.</summary>
    public long? MaxResponseBufferSize { get; init; }

    /// <summary>Receive into 128 KiB blocks instead of 4 KiB (<see cref="ReceiveBufferPool"/>): for servers that take big uploads.</summary>
    public bool LargeReceiveBuffers { get; init; }

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}

/// <summary>
/// Kestrel as every Airlock server runs it: no generic host, no configuration sources, no Server header, one
/// listener, one request delegate. Start with <see cref="StartAsync"/>, stop by disposing.
/// </summary>
public sealed class KestrelHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private bool _stopped;

    private KestrelHost(WebApplication app, string bound)
    {
        _app = app;
        BoundAddress = bound;

        // An unspecified listen address is reached over loopback.
        Address = new Uri(bound.Replace("://[::]", "://[::1]", StringComparison.Ordinal).Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal));
    }

    /// <summary>The address as Kestrel bound it, e.g. <c>http://0.0.0.0:5000</c>.</summary>
    public string BoundAddress { get; }

    /// <summary>An address clients on this host can use, e.g. <c>http://127.0.0.1:41234</c> (the real port when 0 was asked for).</summary>
    public Uri Address { get; }

    /// <summary>The host's services (tests look at how Kestrel is put together).</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>Listens and serves every request with <paramref name="handler"/>; throws when the address cannot be bound.</summary>
    public static async Task<KestrelHost> StartAsync(KestrelHostOptions options, RequestDelegate handler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(handler);
        if (options.Certificate is { HasPrivateKey: false })
        {
            throw new ArgumentException("the TLS certificate has no private key", nameof(options));
        }

        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(options.LoggerFactory);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.WebHost.UseKestrelCore();
        if (options.LargeReceiveBuffers)
        {
            // UseKestrelCore registered Kestrel's pool factory just above; it keeps serving every pool but the transport's.
            var kestrelPools = builder.Services.Last(service => service.ServiceType == typeof(IMemoryPoolFactory<byte>));
            builder.Services.AddSingleton<IMemoryPoolFactory<byte>>(services => new ReceiveBufferPoolFactory(
                (IMemoryPoolFactory<byte>)(kestrelPools.ImplementationInstance
                    ?? kestrelPools.ImplementationFactory?.Invoke(services)
                    ?? ActivatorUtilities.CreateInstance(services, kestrelPools.ImplementationType!))));
        }

        builder.WebHost.UseShutdownTimeout(options.ShutdownTimeout);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxRequestBodySize;
            if (options.MaxResponseBufferSize is { } responseBuffer)
            {
                kestrel.Limits.MaxResponseBufferSize = responseBuffer;
            }

            kestrel.Listen(options.Listen, listen =>
            {
                if (options.TlsPerConnection is { } perConnection)
                {
                    listen.Protocols = options.Http1Only ? HttpProtocols.Http1 : HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(new TlsHandshakeCallbackOptions { OnConnection = _ => ValueTask.FromResult(perConnection()) });
                }
                else if (options.Certificate is { } certificate)
                {
                    listen.Protocols = options.Http1Only ? HttpProtocols.Http1 : HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(https =>
                    {
                        https.ServerCertificate = certificate;
                        https.ServerCertificateChain = options.CertificateChain;
                        if (options.ClientCertificateValidation is { } validate)
                        {
                            https.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                            https.ClientCertificateValidation = validate;
                        }
                    });
                }
                else
                {
                    listen.Protocols = HttpProtocols.Http1;
                }
            });
        });

        var app = builder.Build();
        app.Run(handler);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new KestrelHost(app, app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    /// <summary>Completes when the host was asked to stop.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops accepting connections and waits (up to the shutdown timeout) for requests in flight.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        await _app.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
