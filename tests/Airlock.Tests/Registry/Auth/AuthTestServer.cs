using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Airlock.Registry.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Airlock.Tests.Registry.Auth;

/// <summary>
/// A real Kestrel on a free loopback port whose /v2/... handler asks an <see cref="IAccessController"/>
/// the way the registry does: GET/HEAD → pull, PUT/POST/PATCH → push+pull, DELETE → delete, /v2/ → nothing,
/// /v2/_catalog → registry:catalog:*. Allowed requests answer 200 with the user name.
/// </summary>
internal sealed class AuthTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private AuthTestServer(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public static async Task<AuthTestServer> StartAsync(IAccessController controller, Action<IEndpointRouteBuilder>? mapMore = null, X509Certificate2? tls = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            if (tls is not null)
            {
                l.UseHttps(tls);
            }
        }));
        var app = builder.Build();
        mapMore?.Invoke(app);
        app.Map("/v2/{**rest}", async (HttpContext context, string? rest) =>
        {
            var decision = await controller.AuthorizeAsync(context, Requested(context.Request.Method, rest ?? ""), context.RequestAborted);
            if (decision.IsAllowed)
            {
                await context.Response.WriteAsync(decision.User ?? "(anonymous)");
                return;
            }

            if (decision.Challenge is { } challenge)
            {
                context.Response.StatusCode = 401;
                context.Response.Headers.WWWAuthenticate = challenge;
            }
            else
            {
                context.Response.StatusCode = 403;
            }

            await context.Response.WriteAsync(decision.Detail ?? "");
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Single();
        return new AuthTestServer(app, new Uri(address));
    }

    public HttpClient Client(string? user = null, string? password = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress };
        if (user is not null)
        {
            client.DefaultRequestHeaders.Authorization = Basic(user, password ?? "");
        }

        return client;
    }

    public static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static List<AccessRequest> Requested(string method, string rest)
    {
        if (rest.Length == 0)
        {
            return [];
        }

        if (rest == "_catalog")
        {
            return [AccessRequest.Catalog()];
        }

        var marker = new[] { "/manifests/", "/blobs/", "/tags/" }.Select(m => rest.IndexOf(m, StringComparison.Ordinal)).Where(i => i > 0).Min();
        var name = rest[..marker];
        return method switch
        {
            "GET" or "HEAD" => [AccessRequest.Repository(name, "pull")],
            "DELETE" => [AccessRequest.Repository(name, "delete")],
            _ => [AccessRequest.Repository(name, "pull", "push")],
        };
    }
}
