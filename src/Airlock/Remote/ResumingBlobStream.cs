using System.Net;
using Airlock.IO;
using Microsoft.Extensions.Logging;

namespace Airlock.Remote;

/// <summary>
/// The body of a blob GET that survives a dropped connection: when a read fails (or stalls past the response
/// timeout) it re-requests the blob from the byte offset reached with a Range header and carries on. The
/// caller wraps it in a VerifyingStream, which therefore hashes one continuous byte sequence.
/// </summary>
internal sealed class ResumingBlobStream : ReadOnlyStream
{
    private readonly RegistryClient _client;
    private readonly RegistryCall _call;
    private readonly long _size;
    private readonly RemoteOptions _options;
    private readonly ILogger _logger;
    private RegistryResponse _response;
    private Stream _body;
    private long _position;
    private int _resumes;

    private ResumingBlobStream(RegistryClient client, RegistryCall call, long size, RegistryResponse response, Stream body, RemoteOptions options, ILogger logger)
    {
        _client = client;
        _call = call;
        _size = size;
        _response = response;
        _body = body;
        _options = options;
        _logger = logger;
    }

    public static async Task<ResumingBlobStream> OpenAsync(RegistryClient client, RegistryCall call, long size, RegistryResponse response,
        RemoteOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var body = await response.Message.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        return new ResumingBlobStream(client, call, size, response, body, options, logger);
    }

    /// <summary>How many times the download resumed after a drop.</summary>
    public int Resumes => _resumes;

    public override long Length => _size;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            int n;
            try
            {
                n = await ReadWithTimeoutAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsDrop(ex, cancellationToken) && _position < _size && _resumes < _options.MaxBlobResumes)
            {
                await ResumeAsync(ex, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (n == 0 && _position < _size && _resumes < _options.MaxBlobResumes && _size >= 0)
            {
                // A body that ends early (the server closed a Content-Length-less response) is a drop too.
                await ResumeAsync(new IOException($"response ended after {_position} of {_size} bytes"), cancellationToken).ConfigureAwait(false);
                continue;
            }

            _position += n;
            return n;
        }
    }

    private async ValueTask<int> ReadWithTimeoutAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (_options.ResponseTimeout == Timeout.InfiniteTimeSpan)
        {
            return await _body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        using var timeout = new CancellationTokenSource(_options.ResponseTimeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            return await _body.ReadAsync(buffer, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no data for {_options.ResponseTimeout.TotalSeconds:0.###} s", ex);
        }
    }

    private static bool IsDrop(Exception ex, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested && ex is IOException or TimeoutException or HttpRequestException;

    // A resume request that itself times out or drops is one more resume, not the end of the download.
    private async Task ResumeAsync(Exception reason, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                await ResumeOnceAsync(reason, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (_resumes < _options.MaxBlobResumes
                && (IsDrop(ex, cancellationToken) || (ex is RegistryException { StatusCode: null, InnerException: { } inner } && IsDrop(inner, cancellationToken))))
            {
                reason = ex;
            }
        }
    }

    private async Task ResumeOnceAsync(Exception reason, CancellationToken cancellationToken)
    {
        _resumes++;
        RemoteLog.ResumingBlob(_logger, _call.Reference ?? string.Empty, _call.Registry, _call.Repository, _position, _size, _resumes, _options.MaxBlobResumes, reason);
        await _body.DisposeAsync().ConfigureAwait(false);
        _response.Dispose();

        var call = _call with { RangeFrom = _position };
        var response = await _client.SendAsync(call, cancellationToken).ConfigureAwait(false);
        try
        {
            var body = await response.Message.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            if (response.Status == HttpStatusCode.PartialContent)
            {
                var start = response.Message.Content.Headers.ContentRange?.From;
                if (start != _position)
                {
                    throw new RegistryException(_call.Registry, _call.Repository, _call.Reference, response.Status, [],
                        $"asked to resume at byte {_position} but the registry answered Content-Range from {start?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)"}");
                }
            }
            else if (response.Status == HttpStatusCode.OK)
            {
                // The server ignored Range: skip what was already read, so the byte sequence stays continuous.
                await SkipAsync(body, _position, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                throw RegistryClient.Failure(call, response, $"resuming at byte {_position} failed");
            }

            _response = response;
            _body = body;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private static async Task SkipAsync(Stream body, long count, CancellationToken cancellationToken)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            while (count > 0)
            {
                var n = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new IOException("response ended before the resume offset");
                }

                count -= n;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _body.Dispose();
            _response.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _body.DisposeAsync().ConfigureAwait(false);
        _response.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
