using Airlock.Oci;

namespace Airlock.Content.FileSystemStore;

/// <summary>Blobs as files <c>blobs/&lt;algorithm&gt;/&lt;2 hex&gt;/&lt;hex&gt;</c>, written only through <see cref="BlobIngest"/>.</summary>
public sealed class FileSystemBlobStore(StoreLayout layout, TimeProvider time) : IBlobStore
{
    public ValueTask<long?> SizeAsync(Digest digest, CancellationToken cancellationToken)
    {
        var info = new FileInfo(layout.Blob(digest));
        return ValueTask.FromResult<long?>(info.Exists ? info.Length : null);
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

    public async Task<Digest> WriteAsync(Stream content, Digest? expected, CancellationToken cancellationToken, long maxLength = long.MaxValue)
    {
        Directory.CreateDirectory(layout.IngestDirectory);
        var algorithm = expected?.Algorithm ?? Digest.Sha256Algorithm;
        var ingest = BlobIngest.Start(layout.IngestFile(), algorithm);
        try
        {
            await ingest.CopyFromAsync(content, cancellationToken, maxLength).ConfigureAwait(false);
            var actual = ingest.CurrentDigest(algorithm);
            if (expected is { } wanted && wanted != actual)
            {
                throw new DigestMismatchException(wanted, actual, null);
            }

            var committed = await ingest.CommitAsync(actual, layout.Blob(actual), cancellationToken).ConfigureAwait(false);
            Touch(committed);
            return committed;
        }
        catch
        {
            await ingest.AbortAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            await ingest.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async Task<Digest> WriteAsync(ReadOnlyMemory<byte> content, Digest expected, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(layout.IngestDirectory);
        var ingest = BlobIngest.Start(layout.IngestFile(), expected.Algorithm);
        try
        {
            await ingest.WriteAsync(content, cancellationToken).ConfigureAwait(false);
            var committed = await ingest.CommitAsync(expected, layout.Blob(expected), cancellationToken).ConfigureAwait(false);
            Touch(committed);
            return committed;
        }
        catch
        {
            await ingest.AbortAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            await ingest.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async Task<Digest> CommitAsync(BlobIngest ingest, Digest expected, CancellationToken cancellationToken)
    {
        var current = ingest;
        try
        {
            if (expected.Algorithm != Digest.Sha256Algorithm)
            {
                // Uploads hash as sha256 while they stream; another algorithm needs one more pass.
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

    public void Touch(Digest digest)
    {
        try
        {
            File.SetLastWriteTimeUtc(layout.Blob(digest), time.GetUtcNow().UtcDateTime);
        }
        catch (FileNotFoundException)
        {
            // Nothing to protect.
        }
    }

    public void Delete(Digest digest)
    {
        try
        {
            File.Delete(layout.Blob(digest));
        }
        catch (DirectoryNotFoundException)
        {
            // Already gone.
        }
    }

    public IEnumerable<(Digest Digest, DateTimeOffset LastWrite, long Size)> List()
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
                if (StoreLayout.DigestFromPath(algorithm.Name, file.Name) is { } digest)
                {
                    yield return (digest, new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero), file.Length);
                }
            }
        }
    }
}
