namespace Airlock.Tests.Remote;

/// <summary>Counts requests, methods and request body bytes that leave the client, to prove what was (not) uploaded.</summary>
public sealed class ByteCountingHandler : DelegatingHandler
{
    private readonly Counter _counter;

    public ByteCountingHandler(HttpMessageHandler inner, Counter counter)
        : base(inner)
    {
        _counter = counter;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        _counter.Record(request.Method.Method);
        if (request.Content is { } content)
        {
            request.Content = new CountingContent(content, _counter);
        }

        return await base.SendAsync(request, cancellationToken);
    }

    public sealed class Counter
    {
        private long _requestBytes;
        private int _requests;
        private readonly List<string> _methods = [];

        public long RequestBytes => Interlocked.Read(ref _requestBytes);

        public int Requests => Volatile.Read(ref _requests);

        public IReadOnlyList<string> Methods
        {
            get
            {
                lock (_methods)
                {
                    return [.. _methods];
                }
            }
        }

        internal void Record(string method)
        {
            Interlocked.Increment(ref _requests);
            lock (_methods)
            {
                _methods.Add(method);
            }
        }

        internal void Add(long bytes) => Interlocked.Add(ref _requestBytes, bytes);
    }

    private sealed class CountingContent : HttpContent
    {
        private readonly HttpContent _inner;
        private readonly Counter _counter;

        public CountingContent(HttpContent inner, Counter counter)
        {
            _inner = inner;
            _counter = counter;
            foreach (var header in inner.Headers)
            {
                Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            var counting = new MemoryStream();
            await _inner.CopyToAsync(counting);
            _counter.Add(counting.Length);
            counting.Position = 0;
            await counting.CopyToAsync(stream);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _inner.Headers.ContentLength ?? -1;
            return length >= 0;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
