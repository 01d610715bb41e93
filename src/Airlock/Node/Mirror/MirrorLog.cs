using System.Net;
using Microsoft.Extensions.Logging;

namespace Airlock.Node.Mirror;

internal static partial class MirrorLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Node mirror listening on {Address} ({Registries} registries configured in {Source})")]
    public static partial void Listening(ILogger logger, Uri address, int registries, string source);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Node mirror reloaded {Source} ({Registries} registries configured)")]
    public static partial void Reloaded(ILogger logger, string source, int registries);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug,
        Message = "{Method} {Registry}/{Repository} {Reference} served by {Endpoint} as {UpstreamRepository}: {Status}")]
    public static partial void Served(ILogger logger, string method, string registry, string repository, string reference, string endpoint, string upstreamRepository, HttpStatusCode status);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information,
        Message = "{Registry}/{Repository} {Reference}: endpoint {Endpoint} answered {Status}; trying the next")]
    public static partial void EndpointAnswered(ILogger logger, string registry, string repository, string reference, string endpoint, HttpStatusCode status);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning,
        Message = "{Registry}/{Repository} {Reference}: endpoint {Endpoint} failed after {Elapsed} ms ({Failure}); trying the next")]
    public static partial void EndpointFailed(ILogger logger, string registry, string repository, string reference, string endpoint, long elapsed, string failure);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning,
        Message = "{Registry}/{Repository} {Reference}: the transfer from {Endpoint} broke off ({Failure}); the connection to containerd is cut so it retries")]
    public static partial void TransferBroken(ILogger logger, string registry, string repository, string reference, string endpoint, string failure);
}
