using System.Net;
using System.Runtime.CompilerServices;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Airlock.Content.S3;

/// <summary>
/// The store's bucket through AWS's own SDK (SigV4, multipart, presigned URLs): keys under the store's prefix, and
/// every failure of the object store (unreachable, timed out, 5xx, refused credentials) as one
/// <see cref="StoreUnavailableException"/> naming it, while "no such key" is an answer (null or false).
/// </summary>
internal sealed class S3Bucket : IDisposable
{
    private readonly AmazonS3Client _client;
    private readonly S3StoreOptions _options;
    private readonly Protocol _protocol;
    private readonly bool _signPayload;

    public S3Bucket(S3StoreOptions options)
    {
        _options = options;
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.PathStyle,
            AuthenticationRegion = options.Region,
            Timeout = options.RequestTimeout,
            MaxErrorRetry = 1,

            // Checksums only where S3 requires them: an object store such as Ceph 16's radosgw does not know the
            // trailing-checksum uploads the SDK sends by default, and every byte is verified against its digest anyway.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        if (options.Endpoint is { } endpoint)
        {
            config.ServiceURL = endpoint.ToString();
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }

        AWSCredentials credentials = options.Credentials.SessionToken is { } token
            ? new SessionAWSCredentials(options.Credentials.AccessKeyId, options.Credentials.SecretAccessKey, token)
            : new BasicAWSCredentials(options.Credentials.AccessKeyId, options.Credentials.SecretAccessKey);
        _client = new AmazonS3Client(credentials, config);
        _protocol = options.Endpoint?.Scheme == "http" ? Protocol.HTTP : Protocol.HTTPS;

        // Over TLS the transport protects the body, and the digest check covers it end to end: no second hash.
        _signPayload = _protocol == Protocol.HTTP;
    }

    public string Name => _options.Bucket;

    public string Key(string relative) => _options.Prefix + relative;

    /// <summary>Creates the bucket unless it exists (an existing bucket owned by these credentials is fine).</summary>
    public async Task EnsureBucketAsync(CancellationToken cancellationToken)
    {
        await CallAsync(async () =>
        {
            try
            {
                await _client.PutBucketAsync(new PutBucketRequest { BucketName = Name }, cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonS3Exception ex) when (ex.ErrorCode is "BucketAlreadyOwnedByYou" or "BucketAlreadyExists")
            {
                // Created before (by this store or another replica).
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    public Task PutAsync(string key, Stream content, CancellationToken cancellationToken) =>
        CallAsync(() => _client.PutObjectAsync(new PutObjectRequest
        {
            BucketName = Name,
            Key = key,
            InputStream = content,
            AutoCloseStream = false,
            AutoResetStreamPosition = false,
            DisablePayloadSigning = !_signPayload,
            UseChunkEncoding = false,
        }, cancellationToken), cancellationToken);

    public async Task<string> StartMultipartAsync(string key, CancellationToken cancellationToken) =>
        (await CallAsync(() => _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = Name, Key = key }, cancellationToken), cancellationToken).ConfigureAwait(false)).UploadId;

    public async Task<string> UploadPartAsync(string key, string uploadId, int number, Stream content, long length, CancellationToken cancellationToken) =>
        (await CallAsync(() => _client.UploadPartAsync(new UploadPartRequest
        {
            BucketName = Name,
            Key = key,
            UploadId = uploadId,
            PartNumber = number,
            InputStream = content,
            PartSize = length,
            DisablePayloadSigning = !_signPayload,
            UseChunkEncoding = false,
        }, cancellationToken), cancellationToken).ConfigureAwait(false)).ETag;

    public Task CompleteMultipartAsync(string key, string uploadId, IEnumerable<(int Number, string ETag)> parts, CancellationToken cancellationToken) =>
        CallAsync(() => _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = Name,
            Key = key,
            UploadId = uploadId,
            PartETags = parts.Select(p => new PartETag(p.Number, p.ETag)).ToList(),
        }, cancellationToken), cancellationToken);

    public async Task AbortMultipartAsync(string key, string uploadId, CancellationToken cancellationToken)
    {
        try
        {
            await CallAsync(() => _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = Name, Key = key, UploadId = uploadId }, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            // Already completed or aborted.
        }
    }

    /// <summary>Incomplete multipart uploads under <paramref name="prefix"/> (a full key prefix), with when each was started.</summary>
    public async IAsyncEnumerable<(string Key, string UploadId, DateTimeOffset Initiated)> ListMultipartAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? keyMarker = null, uploadMarker = null;
        while (true)
        {
            var page = await CallAsync(() => _client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest
            {
                BucketName = Name,
                Prefix = prefix,
                KeyMarker = keyMarker,
                UploadIdMarker = uploadMarker,
            }, cancellationToken), cancellationToken).ConfigureAwait(false);
            foreach (var upload in page.MultipartUploads ?? [])
            {
                yield return (upload.Key, upload.UploadId, upload.Initiated is { } initiated ? new DateTimeOffset(initiated.ToUniversalTime(), TimeSpan.Zero) : DateTimeOffset.MinValue);
            }

            if (page.IsTruncated != true)
            {
                yield break;
            }

            keyMarker = page.NextKeyMarker;
            uploadMarker = page.NextUploadIdMarker;
        }
    }

    /// <summary>A server-side copy (one request up to 5 GiB, a multipart copy above).</summary>
    public async Task CopyAsync(string from, string to, long size, CancellationToken cancellationToken)
    {
        const long SingleCopyLimit = 5L << 30;
        if (size <= SingleCopyLimit)
        {
            await CallAsync(() => _client.CopyObjectAsync(new CopyObjectRequest { SourceBucket = Name, SourceKey = from, DestinationBucket = Name, DestinationKey = to }, cancellationToken), cancellationToken).ConfigureAwait(false);
            return;
        }

        var uploadId = await StartMultipartAsync(to, cancellationToken).ConfigureAwait(false);
        try
        {
            const long PartBytes = 1L << 30;
            var parts = new List<(int, string)>();
            for (long offset = 0, number = 1; offset < size; offset += PartBytes, number++)
            {
                var last = Math.Min(size, offset + PartBytes) - 1;
                var part = await CallAsync(() => _client.CopyPartAsync(new CopyPartRequest
                {
                    SourceBucket = Name,
                    SourceKey = from,
                    DestinationBucket = Name,
                    DestinationKey = to,
                    UploadId = uploadId,
                    PartNumber = (int)number,
                    FirstByte = offset,
                    LastByte = last,
                }, cancellationToken), cancellationToken).ConfigureAwait(false);
                parts.Add(((int)number, part.ETag));
            }

            await CompleteMultipartAsync(to, uploadId, parts, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await AbortMultipartAsync(to, uploadId, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The object from <paramref name="offset"/> to its end as a stream (seekable: a seek before reading asks for the
    /// range from there), or null when there is no such object.
    /// </summary>
    public async Task<Stream?> GetAsync(string key, long offset, CancellationToken cancellationToken)
    {
        var response = await GetResponseAsync(key, offset, cancellationToken).ConfigureAwait(false);
        return response is null ? null : new ObjectStream(this, key, offset, response);
    }

    private async Task<GetObjectResponse?> GetResponseAsync(string key, long offset, CancellationToken cancellationToken)
    {
        try
        {
            return await CallAsync(() => _client.GetObjectAsync(new GetObjectRequest
            {
                BucketName = Name,
                Key = key,
                ByteRange = offset > 0 ? new ByteRange($"bytes={offset}-") : null,
            }, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>The object's size, or null when there is none.</summary>
    public async Task<long?> SizeAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            return (await CallAsync(() => _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = Name, Key = key }, cancellationToken), cancellationToken).ConfigureAwait(false)).ContentLength;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>When the object was last written, or null when there is none.</summary>
    public async Task<DateTimeOffset?> LastModifiedAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            var metadata = await CallAsync(() => _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = Name, Key = key }, cancellationToken), cancellationToken).ConfigureAwait(false);
            return metadata.LastModified is { } modified ? new DateTimeOffset(modified.ToUniversalTime(), TimeSpan.Zero) : null;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public Task DeleteAsync(string key, CancellationToken cancellationToken) =>
        CallAsync(() => _client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = Name, Key = key }, cancellationToken), cancellationToken);

    /// <summary>Every object key under <paramref name="prefix"/> (a full key prefix).</summary>
    public async IAsyncEnumerable<string> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var item in ListObjectsAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            yield return item.Key;
        }
    }

    /// <summary>Every object under <paramref name="prefix"/> (a full key prefix), with its size and when it was last written.</summary>
    public async IAsyncEnumerable<(string Key, long Size, DateTimeOffset LastModified)> ListObjectsAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? token = null;
        while (true)
        {
            var page = await CallAsync(() => _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = Name, Prefix = prefix, ContinuationToken = token }, cancellationToken), cancellationToken).ConfigureAwait(false);
            foreach (var item in page.S3Objects ?? [])
            {
                yield return (item.Key, item.Size ?? 0, item.LastModified is { } modified ? new DateTimeOffset(modified.ToUniversalTime(), TimeSpan.Zero) : DateTimeOffset.MinValue);
            }

            if (page.IsTruncated != true)
            {
                yield break;
            }

            token = page.NextContinuationToken;
        }
    }

    /// <summary>A URL that lets whoever holds it GET the object for <paramref name="validity"/>.</summary>
    public async Task<Uri> PresignAsync(string key, TimeSpan validity, DateTimeOffset now) =>
        new(await _client.GetPreSignedURLAsync(new GetPreSignedUrlRequest
        {
            BucketName = Name,
            Key = key,
            Verb = HttpVerb.GET,
            Protocol = _protocol,
            Expires = (now + validity).UtcDateTime,
        }).ConfigureAwait(false));

    /// <summary>Runs one S3 call; whatever the object store did wrong (not a missing key) becomes <see cref="StoreUnavailableException"/>.</summary>
    private async Task<T> CallAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound && ex.ErrorCode is "NoSuchKey" or "NoSuchUpload" or "NotFound" or null)
        {
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (ex is not (ArgumentException or InvalidOperationException or NotSupportedException))
        {
            // Unreachable, timed out (the SDK's own timeout surfaces as a cancellation or a TimeoutException), 5xx,
            // refused credentials: the object store failed, not the request.
            throw new StoreUnavailableException($"the object store ({_options.Location}) failed: {ex.Message}", ex);
        }
    }

    public void Dispose() => _client.Dispose();

    /// <summary>
    /// A GET's body; disposing it ends the response. A seek drops the response and the next read asks for the object
    /// from the new position (a registry serving a Range request seeks once, before reading).
    /// </summary>
    private sealed class ObjectStream(S3Bucket bucket, string key, long position, GetObjectResponse first) : Stream
    {
        private readonly long _length = position + first.ContentLength;
        private GetObjectResponse? _response = first;
        private long _position = position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => _length;

        public override long Position
        {
            get => _position;
            set => Seek(value, SeekOrigin.Begin);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position >= _length)
            {
                return 0;
            }

            _response ??= await bucket.GetResponseAsync(key, _position, cancellationToken).ConfigureAwait(false)
                ?? throw new StoreUnavailableException($"the object {key} disappeared from the object store while it was read");
            int read;
            try
            {
                read = await _response.ResponseStream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                throw new StoreUnavailableException($"reading {key} from the object store failed: {ex.Message}", ex);
            }

            _position += read;
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override long Seek(long offset, SeekOrigin origin)
        {
            var target = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => _length + offset,
            };
            ArgumentOutOfRangeException.ThrowIfNegative(target);
            if (target != _position)
            {
                _response?.Dispose();
                _response = null;
                _position = target;
            }

            return _position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _response?.Dispose();
                _response = null;
            }

            base.Dispose(disposing);
        }
    }
}
