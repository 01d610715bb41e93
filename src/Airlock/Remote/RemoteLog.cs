using System.Net;
using Microsoft.Extensions.Logging;

namespace Airlock.Remote;

internal static partial class RemoteLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning,
        Message = "Retrying {Method} {Url} on {Registry} after {Failure} (attempt {Attempt} of {MaxAttempts}) in {Delay}")]
    public static partial void Retrying(ILogger logger, string method, Uri url, string registry, string failure, int attempt, int maxAttempts, TimeSpan delay);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning,
        Message = "Blob {Digest} from {Registry}/{Repository} dropped at byte {Offset} of {Size}; resuming ({Resume} of {MaxResumes})")]
    public static partial void ResumingBlob(ILogger logger, string digest, string registry, string? repository, long offset, long size, int resume, int maxResumes, Exception error);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning,
        Message = "Registry {Registry} failed over HTTPS ({Failure}); falling back to plain HTTP because insecure access is allowed")]
    public static partial void FallingBackToHttp(ILogger logger, string registry, string failure);

    [LoggerMessage(EventId = 10, Level = LogLevel.Debug,
        Message = "Registry {Registry} is on loopback and does not speak TLS; using plain HTTP (containerd's rule for localhost)")]
    public static partial void LoopbackPlainHttp(ILogger logger, string registry);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug,
        Message = "Fetching a token from {Realm} for {Registry} (service {Service}, scopes {Scopes})")]
    public static partial void FetchingToken(ILogger logger, string realm, string registry, string? service, string scopes);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information,
        Message = "Mounted blob {Digest} into {Registry}/{Repository} from {MountFrom}")]
    public static partial void Mounted(ILogger logger, string digest, string registry, string repository, string mountFrom);

    [LoggerMessage(EventId = 6, Level = LogLevel.Debug,
        Message = "Uploaded blob {Digest} ({Size} bytes) to {Registry}/{Repository}")]
    public static partial void Uploaded(ILogger logger, string digest, long size, string registry, string repository);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning,
        Message = "Restarting the upload of blob {Digest} to {Registry}/{Repository} after {Failure} (attempt {Attempt} of {MaxAttempts})")]
    public static partial void RestartingUpload(ILogger logger, string digest, string registry, string repository, string failure, int attempt, int maxAttempts);

    [LoggerMessage(EventId = 8, Level = LogLevel.Debug,
        Message = "{Method} {Url} on {Registry} answered {Status}")]
    public static partial void Answered(ILogger logger, string method, Uri url, string registry, HttpStatusCode status);
}
