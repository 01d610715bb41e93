using System.Buffers;
using Airlock.Bundles.Transfer;
using Airlock.Content;
using Airlock.IO;
using Airlock.Oci;
using Google.Protobuf;
using Grpc.Core;
using ContentApi = Airlock.Node.Containerd.Api.Content;

namespace Airlock.Node.Containerd;

/// <summary>
/// containerd's content service (Go: <c>client.ContentStore()</c>): blobs by digest, their labels, and ingests —
/// streamed writes verified while they are sent, committed under the expected digest.
/// </summary>
public sealed class ContainerdContentStore
{
    // Below gRPC's 4 MiB default message limit on containerd's side, large enough that the one round trip
    // per chunk the Write protocol needs does not dominate.
    private const int WriteChunkSize = 1024 * 1024;
    private const int ChunksInFlight = 8;

    private readonly ContainerdClient _client;
    private readonly ContentApi.Content.ContentClient _service;

    internal ContainerdContentStore(ContainerdClient client, CallInvoker invoker)
    {
        _client = client;
        _service = new ContentApi.Content.ContentClient(invoker);
    }

    /// <summary>The committed blob, or null when containerd does not have it.</summary>
    public async Task<ContentInfo?> InfoAsync(Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _client.Unary("content.info " + digest, c => _service.InfoAsync(new ContentApi.InfoRequest { Digest = digest.ToString() }, c), cancellationToken).ConfigureAwait(false);
            return ToContentInfo(response.Info);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Every committed blob of this namespace with its labels (<c>ctr content ls</c>), in the batches containerd streams;
    /// <paramref name="filters"/> in containerd's filter syntax (any of them matches), none for all.
    /// </summary>
    public async IAsyncEnumerable<ContentInfo> ListAsync(IReadOnlyList<string> filters, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new ContentApi.ListContentRequest();
        request.Filters.AddRange(filters);
        using var call = _service.List(request, _client.TransferOptions(cancellationToken));
        while (true)
        {
            try
            {
                if (!await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
                {
                    yield break;
                }
            }
            catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled || !cancellationToken.IsCancellationRequested)
            {
                throw ContainerdException.From("content.list", ex);
            }

            foreach (var info in call.ResponseStream.Current.Info)
            {
                yield return ToContentInfo(info);
            }
        }
    }

    /// <summary>Sets (adds or replaces) the given labels on a committed blob, leaving its other labels alone.</summary>
    public async Task<ContentInfo> UpdateLabelsAsync(Digest digest, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var request = new ContentApi.UpdateRequest { Info = new ContentApi.Info { Digest = digest.ToString() }, UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask() };
        foreach (var (key, value) in labels)
        {
            request.Info.Labels[key] = value;
            request.UpdateMask.Paths.Add("labels." + key);
        }

        var response = await _client.Unary("content.update " + digest, c => _service.UpdateAsync(request, c), cancellationToken).ConfigureAwait(false);
        return ToContentInfo(response.Info);
    }

    /// <summary>A committed blob as a stream, read in the chunks containerd sends.</summary>
    public Stream Open(Digest digest, CancellationToken cancellationToken)
    {
        var call = _service.Read(new ContentApi.ReadContentRequest { Digest = digest.ToString() }, _client.TransferOptions(cancellationToken));
        return new ContentReadStream(call, "content.read " + digest);
    }

    /// <summary>
    /// Streams <paramref name="content"/> into the content store under ingest <paramref name="ingestRef"/> and
    /// commits it as <paramref name="blob"/> with <paramref name="labels"/>. The digest and size are computed
    /// here while sending and checked before the commit (and again by containerd at commit); a mismatch
    /// throws <see cref="DigestMismatchException"/>. Returns false
    /// when containerd already had the blob. On any failure the ingest is aborted so nothing is left behind.
    /// </summary>
    public async Task<bool> WriteAsync(
        string ingestRef,
        Descriptor blob,
        Stream content,
        IReadOnlyDictionary<string, string>? labels,
        CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(ingestRef);
        var operation = "content.write " + blob.Digest;
        var buffer = ArrayPool<byte>.Shared.Rent(WriteChunkSize);

        // Throws before the commit is sent if the content is not the descriptor's digest and size.
        var verified = new VerifyingStream(content, blob.Digest, blob.Size, leaveOpen: true);
        var expected = blob.Digest.ToString();
        var call = await OpenWriteAsync(ingestRef, blob, operation, cancellationToken).ConfigureAwait(false);
        if (call is null)
        {
            await verified.DisposeAsync().ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(buffer);
            return false;
        }

        try
        {
            // Offset 0 on the first write truncates whatever an earlier, interrupted ingest of this ref left.
            // containerd answers every message; a few chunks are sent ahead of the answers so the round trip
            // does not limit throughput, and each answer must report the offset its chunk ends at.
            long offset = 0;
            var unanswered = new Queue<long>();
            while (true)
            {
                var filled = await FillAsync(verified, buffer, cancellationToken).ConfigureAwait(false);
                if (filled == 0)
                {
                    break;
                }

                // Wrapping the pooled buffer is safe: grpc serialises the message into the request stream before
                // WriteAsync completes, and only then is the buffer refilled.
                await call.RequestStream.WriteAsync(new ContentApi.WriteContentRequest
                {
                    Action = ContentApi.WriteAction.Write,
                    Offset = offset,
                    Data = UnsafeByteOperations.UnsafeWrap(buffer.AsMemory(0, filled)),
                }, cancellationToken).ConfigureAwait(false);
                offset += filled;
                unanswered.Enqueue(offset);
                if (unanswered.Count >= ChunksInFlight)
                {
                    await ExpectOffsetAsync(call, unanswered.Dequeue(), operation, cancellationToken).ConfigureAwait(false);
                }
            }

            while (unanswered.Count > 0)
            {
                await ExpectOffsetAsync(call, unanswered.Dequeue(), operation, cancellationToken).ConfigureAwait(false);
            }

            var commit = new ContentApi.WriteContentRequest
            {
                Action = ContentApi.WriteAction.Commit,
                Offset = offset,
                Total = blob.Size,
                Expected = expected,
            };
            if (labels is not null)
            {
                ContainerdWire.AddAll(commit.Labels, labels);
            }

            await call.RequestStream.WriteAsync(commit, cancellationToken).ConfigureAwait(false);
            await NextResponse(call, operation, cancellationToken).ConfigureAwait(false);
            await call.RequestStream.CompleteAsync().ConfigureAwait(false);
            return true;
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.AlreadyExists)
        {
            // Committed by someone else while we were writing; containerd dropped our ingest itself.
            return false;
        }
        catch
        {
            call.Dispose();
            await AbortQuietlyAsync(ingestRef).ConfigureAwait(false);
            throw;
        }
        finally
        {
            call.Dispose();
            await verified.DisposeAsync().ConfigureAwait(false);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // Opens the write stream with its Stat message. Null when containerd has the blob already (it answers
    // AlreadyExists for an expected digest it holds). Another writer of the same ref (a parallel import of
    // a shared base layer) holds the ingest's lock: wait for it to commit or give up, within the call timeout.
    private async Task<AsyncDuplexStreamingCall<ContentApi.WriteContentRequest, ContentApi.WriteContentResponse>?> OpenWriteAsync(
        string ingestRef, Descriptor blob, string operation, CancellationToken cancellationToken)
    {
        var giveUp = _client.Options.TimeProvider.GetUtcNow() + _client.Options.CallTimeout;
        while (true)
        {
            var call = _service.Write(_client.TransferOptions(cancellationToken));
            try
            {
                await call.RequestStream.WriteAsync(new ContentApi.WriteContentRequest
                {
                    Action = ContentApi.WriteAction.Stat,
                    Ref = ingestRef,
                    Total = blob.Size,
                    Expected = blob.Digest.ToString(),
                }, cancellationToken).ConfigureAwait(false);
                await NextResponse(call, operation, cancellationToken).ConfigureAwait(false);
                return call;
            }
            catch (ContainerdException ex) when (ex.Code == StatusCode.AlreadyExists)
            {
                call.Dispose();
                return null;
            }
            catch (ContainerdException ex) when (ex.Code == StatusCode.Unavailable
                && ex.Message.Contains("locked", StringComparison.Ordinal) && _client.Options.TimeProvider.GetUtcNow() < giveUp)
            {
                call.Dispose();
                await Task.Delay(TimeSpan.FromMilliseconds(200), _client.Options.TimeProvider, cancellationToken).ConfigureAwait(false);
                if (await InfoAsync(blob.Digest, cancellationToken).ConfigureAwait(false) is not null)
                {
                    return null;
                }
            }
            catch
            {
                call.Dispose();
                throw;
            }
        }
    }

    /// <summary>The ingest with this ref, or null when there is none.</summary>
    public async Task<IngestStatus?> StatusAsync(string ingestRef, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _client.Unary("content.status " + ingestRef, c => _service.StatusAsync(new ContentApi.StatusRequest { Ref = ingestRef }, c), cancellationToken).ConfigureAwait(false);
            return ToIngestStatus(response.Status);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Ingests in progress or left behind, optionally filtered by a ref regular expression.</summary>
    public async Task<IReadOnlyList<IngestStatus>> ListStatusesAsync(string? refPattern, CancellationToken cancellationToken)
    {
        var request = new ContentApi.ListStatusesRequest();
        if (refPattern is not null)
        {
            request.Filters.Add("ref~=" + refPattern);
        }

        var response = await _client.Unary("content.list-statuses", c => _service.ListStatusesAsync(request, c), cancellationToken).ConfigureAwait(false);
        return response.Statuses.Select(ToIngestStatus).ToList();
    }

    /// <summary>Drops an ingest and its partial data; an ingest that does not exist is not an error.</summary>
    public async Task AbortAsync(string ingestRef, CancellationToken cancellationToken)
    {
        try
        {
            await _client.Unary("content.abort " + ingestRef, c => _service.AbortAsync(new ContentApi.AbortRequest { Ref = ingestRef }, c), cancellationToken).ConfigureAwait(false);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
        }
    }

    // The caller's token may be the reason we are here; cleanup gets its own bounded time. containerd may
    // still be opening the writer of a cancelled stream when the first abort arrives, so check and repeat.
    private async Task AbortQuietlyAsync(string ingestRef)
    {
        using var timeout = new CancellationTokenSource(_client.Options.CallTimeout, _client.Options.TimeProvider);
        try
        {
            for (var attempt = 0; attempt < 5; attempt++)
            {
                await AbortAsync(ingestRef, timeout.Token).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromMilliseconds(20 * (attempt + 1)), _client.Options.TimeProvider, timeout.Token).ConfigureAwait(false);
                if (await StatusAsync(ingestRef, timeout.Token).ConfigureAwait(false) is null)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is ContainerdException or OperationCanceledException)
        {
            // Best effort: a dangling ingest is harmless to correctness and containerd's GC removes stale ones.
        }
    }

    private static async Task<ContentApi.WriteContentResponse> NextResponse(
        AsyncDuplexStreamingCall<ContentApi.WriteContentRequest, ContentApi.WriteContentResponse> call, string operation, CancellationToken cancellationToken)
    {
        try
        {
            if (!await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                throw new ContainerdException(operation, StatusCode.Internal, "containerd closed the write stream early");
            }

            return call.ResponseStream.Current;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(ex.Message, ex, cancellationToken);
        }
        catch (RpcException ex)
        {
            throw ContainerdException.From(operation, ex);
        }
    }

    private static async Task ExpectOffsetAsync(
        AsyncDuplexStreamingCall<ContentApi.WriteContentRequest, ContentApi.WriteContentResponse> call, long offset, string operation, CancellationToken cancellationToken)
    {
        var answer = await NextResponse(call, operation, cancellationToken).ConfigureAwait(false);
        if (answer.Offset != offset)
        {
            throw new ContainerdException(operation, StatusCode.DataLoss, $"containerd is at offset {answer.Offset}, expected {offset}");
        }
    }

    private static async Task<int> FillAsync(Stream content, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        while (filled < WriteChunkSize)
        {
            var n = await content.ReadAsync(buffer.AsMemory(filled, WriteChunkSize - filled), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }

            filled += n;
        }

        return filled;
    }

    private static ContentInfo ToContentInfo(ContentApi.Info info) =>
        new(Digest.Parse(info.Digest), info.Size, new Dictionary<string, string>(info.Labels, StringComparer.Ordinal));

    private static IngestStatus ToIngestStatus(ContentApi.Status status) => new(status.Ref, status.Offset, status.Total, status.Expected);

    /// <summary>Content.Read's server stream as a read-only stream; containerd ends it after the last chunk.</summary>
    private sealed class ContentReadStream(AsyncServerStreamingCall<ContentApi.ReadContentResponse> call, string operation) : ReadOnlyStream
    {
        private ReadOnlyMemory<byte> _pending;
        private bool _ended;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (_pending.IsEmpty && !_ended)
            {
                try
                {
                    if (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
                    {
                        _pending = call.ResponseStream.Current.Data.Memory;
                    }
                    else
                    {
                        _ended = true;
                    }
                }
                catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled)
                {
                    throw ContainerdException.From(operation, ex);
                }
            }

            var n = Math.Min(buffer.Length, _pending.Length);
            _pending[..n].CopyTo(buffer);
            _pending = _pending[n..];
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                call.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
