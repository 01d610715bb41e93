using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// Chunked upload sessions (<c>POST</c>, <c>PATCH</c>…, <c>PUT ?digest=</c>): each collects one blob across
/// requests, survives a restart of the registry and, in a store shared by replicas, can be continued through any of
/// them. A session's bytes are never visible as a blob until its commit verified them.
/// </summary>
public interface IUploadSessionStore
{
    /// <summary>Starts a session for <paramref name="repository"/>; returns its id (URL-safe, unguessable).</summary>
    ValueTask<string> CreateAsync(string repository, CancellationToken cancellationToken);

    /// <summary>The session's state without taking it (a status request), or null when unknown.</summary>
    ValueTask<UploadSessionInfo?> FindAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the session for one request: at most one request holds a session at a time, in this process and in
    /// any other serving the same store (the next one waits), and garbage collection never removes a held session.
    /// Null when the session does not exist (any more).
    /// </summary>
    ValueTask<IUploadSession?> OpenAsync(string id, CancellationToken cancellationToken);

    /// <summary>
    /// Removes a session nobody holds that has been idle since <paramref name="idleSince"/> (garbage collection,
    /// possibly in another process than the one serving it). False when held, active again or gone.
    /// </summary>
    ValueTask<bool> TryDeleteIdleAsync(string id, DateTimeOffset idleSince, CancellationToken cancellationToken);

    /// <summary>Every session of the store (of every replica), in no particular order.</summary>
    IAsyncEnumerable<UploadSessionInfo> ListAsync(CancellationToken cancellationToken);
}

/// <summary>
/// An upload session: its repository, the bytes received so far, its last activity and when it started (null from a
/// store that does not keep it; the console shows it).
/// </summary>
public sealed record UploadSessionInfo(string Id, string Repository, long Length, DateTimeOffset LastActivity, DateTimeOffset? StartedAt = null);

/// <summary>One request's hold on an upload session; disposing it lets the next request in.</summary>
public interface IUploadSession : IAsyncDisposable
{
    string Id { get; }

    string Repository { get; }

    /// <summary>Bytes received so far.</summary>
    long Length { get; }

    /// <summary>
    /// Appends <paramref name="body"/>; returns the bytes appended. After a failure the session stays at a length the
    /// next request (or a status request) sees as it is on storage.
    /// </summary>
    Task<long> AppendAsync(Stream body, CancellationToken cancellationToken);

    /// <summary>
    /// Verifies the session's bytes against <paramref name="expected"/> and stores them as that blob (as
    /// <see cref="IBlobWriter.CommitAsync"/> does). The session ends either way.
    /// </summary>
    Task<Digest> CommitAsync(Digest expected, CancellationToken cancellationToken);

    /// <summary>Ends the session and drops its bytes (a client's DELETE).</summary>
    ValueTask CancelAsync();
}
