using System.Runtime.CompilerServices;
using Airlock.Oci;

namespace Airlock.Content.FileSystemStore;

/// <summary>Blobs as files <c>blobs/&lt;algorithm&gt;/&lt;2 hex&gt;/&lt;hex&gt;</c>, written only through a <see cref="BlobIngest"/> in <c>ingest/</c>.</summary>
public sealed class FileSystemBlobStore(StoreLayout layout, TimeProvider time) : IBlobStore
{
    public ValueTask<BlobInfo?> StatAsync(Digest digest, CancellationToken cancellationToken)
    {
        var info = new FileInfo(layout.Blob(digest));
        return ValueTask.FromResult<BlobInfo?>(info.Exists ? new BlobInfo(digest, info.Length, new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero)) : null);
    }

    public ValueTask<Stream?> OpenReadAsync(Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            Stream stream = new FileStream(layout.Blob(digest), new FileStreamOptions
            {
                Mode = FileMode.Open,
                Access = FileAccess.Read,
                Share = FileShare.Read | FileShare.Delete,
                Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
                BufferSize = 0,
            });
            return ValueTask.FromResult<Stream?>(stream);
        }
        catch (FileNotFoundException)
        {
            return ValueTask.FromResult<Stream?>(null);
        }
        catch (DirectoryNotFoundException)
        {
            return ValueTask.FromResult<Stream?>(null);
        }
    }

    public async Task<byte[]?> ReadSmallAsync(Digest digest, int maxBytes, CancellationToken cancellationToken)
    {
        var stream = await OpenReadAsync(digest, cancellationToken).ConfigureAwait(false);
        if (stream is null)
        {
            return null;
        }

        await using (stream.ConfigureAwait(false))
        {
            if (stream.Length > maxBytes)
            {
                return null;
            }

            var content = new byte[stream.Length];
            await stream.ReadExactlyAsync(content, cancellationToken).ConfigureAwait(false);
            return content;
        }
    }

    public string? LocalPath(Digest digest) => layout.Blob(digest);

    public ValueTask<IBlobWriter> BeginWriteAsync(string algorithm, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(layout.IngestDirectory);
        return ValueTask.FromResult<IBlobWriter>(new FileSystemBlobWriter(this, BlobIngest.Start(layout.IngestFile(), algorithm), algorithm));
    }

    public ValueTask TouchAsync(Digest digest, CancellationToken cancellationToken)
    {
        Touch(digest);
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> DeleteAsync(Digest digest, CancellationToken cancellationToken)
    {
        var path = layout.Blob(digest);
        try
        {
            if (!File.Exists(path))
            {
                return ValueTask.FromResult(false);
            }

            File.Delete(path);
            return ValueTask.FromResult(true);
        }
        catch (DirectoryNotFoundException)
        {
            return ValueTask.FromResult(false);
        }
    }

    public async IAsyncEnumerable<BlobInfo> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var root = new DirectoryInfo(layout.BlobsDirectory);
        if (!root.Exists)
        {
            yield break;
        }

        foreach (var algorithm in root.EnumerateDirectories())
        {
            foreach (var file in algorithm.EnumerateFiles("*", SearchOption.AllDirectories))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (StoreLayout.DigestFromPath(algorithm.Name, file.Name) is { } digest)
                {
                    yield return new BlobInfo(digest, file.Length, new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero));
                }
            }
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <summary>Verifies, fsyncs and renames <paramref name="ingest"/> into place, then touches the blob; the ingest is consumed whatever the outcome.</summary>
    internal async Task<Digest> CommitAsync(BlobIngest ingest, string algorithm, Digest expected, CancellationToken cancellationToken)
    {
        var current = ingest;
        try
        {
            if (expected.Algorithm != algorithm)
            {
                // The ingest hashed with another algorithm while it streamed; this one needs one more pass.
                var path = current.TempPath;
                await current.DisposeAsync().ConfigureAwait(false);
                current = await BlobIngest.ResumeAsync(path, cancellationToken, expected.Algorithm).ConfigureAwait(false);
            }

            var committed = await current.CommitAsync(expected, layout.Blob(expected), cancellationToken).ConfigureAwait(false);
            Touch(committed);
            return committed;
        }
        catch
        {
            await current.AbortAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            await current.DisposeAsync().ConfigureAwait(false);
        }
    }

    private void Touch(Digest digest)
    {
        try
        {
            File.SetLastWriteTimeUtc(layout.Blob(digest), time.GetUtcNow().UtcDateTime);
        }
        catch (FileNotFoundException)
        {
            // Nothing to protect.
        }
        catch (DirectoryNotFoundException)
        {
            // Nothing to protect.
        }
    }
}

/// <summary>A <see cref="BlobIngest"/> (temp file, hashed while written) that commits into a <see cref="FileSystemBlobStore"/>.</summary>
internal sealed class FileSystemBlobWriter(FileSystemBlobStore store, BlobIngest ingest, string algorithm) : IBlobWriter
{
    private bool _finished;

    public long Length => ingest.Length;

    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => ingest.WriteAsync(data, cancellationToken);

    public Task<long> CopyFromAsync(Stream source, CancellationToken cancellationToken, long maxLength = long.MaxValue) =>
        ingest.CopyFromAsync(source, cancellationToken, maxLength);

    public Digest CurrentDigest() => ingest.CurrentDigest(algorithm);

    public Stream? OpenWritten() => new FileStream(ingest.TempPath, new FileStreamOptions
    {
        Mode = FileMode.Open,
        Access = FileAccess.Read,
        Share = FileShare.ReadWrite | FileShare.Delete,
        Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
        BufferSize = 0,
    });

    public Task<Digest> CommitAsync(Digest expected, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        _finished = true;
        return store.CommitAsync(ingest, algorithm, expected, cancellationToken);
    }

    public async ValueTask AbortAsync()
    {
        if (_finished)
        {
            return;
        }

        _finished = true;
        await ingest.AbortAsync().ConfigureAwait(false);
        await ingest.DisposeAsync().ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => AbortAsync();
}
