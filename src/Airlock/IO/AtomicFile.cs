namespace Airlock.IO;

/// <summary>
/// Replaces a whole file so that readers see the old content or the new one, never a mix, and a crash leaves
/// the old file (and at most a hidden temporary file beside it): the content goes to a temporary file in the
/// same directory, created with its final mode so no byte is ever readable more widely, then is fsynced,
/// renamed over the target, and the directory is fsynced so the rename survives a power cut.
/// </summary>
/// <remarks>
/// The temporary file is <c>.NAME.RANDOM.tmp</c>: hidden, and never matched by a reader looking for NAME.
/// The directory is created when missing. The mode is subject to the umask, so it can only get narrower.
/// </remarks>
public static class AtomicFile
{
    /// <summary><c>0644</c>: configuration and certificates anyone on the host may read.</summary>
    public const UnixFileMode Readable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary><c>0600</c>: private keys and files holding credentials.</summary>
    public const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Writes <paramref name="content"/> to <paramref name="path"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> content, UnixFileMode mode = Readable)
    {
        var (directory, temporary) = Prepare(path);
        try
        {
            using (var stream = new FileStream(temporary, Options(mode, FileOptions.None)))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            Commit(temporary, path, directory);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>Writes <paramref name="content"/> to <paramref name="path"/>.</summary>
    public static Task WriteAsync(string path, ReadOnlyMemory<byte> content, UnixFileMode mode, CancellationToken cancellationToken) =>
        WriteAsync(path, mode, (stream, token) => stream.WriteAsync(content, token).AsTask(), cancellationToken);

    /// <summary>
    /// Writes what <paramref name="write"/> puts into the stream it is given (e.g. a JSON serializer) to
    /// <paramref name="path"/>; when it throws, the target is left as it was.
    /// </summary>
    public static async Task WriteAsync(string path, UnixFileMode mode, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(write);
        var (directory, temporary) = Prepare(path);
        try
        {
            var stream = new FileStream(temporary, Options(mode, FileOptions.Asynchronous));
            await using (stream.ConfigureAwait(false))
            {
                await write(stream, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            Commit(temporary, path, directory);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private static (string Directory, string Temporary) Prepare(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        return (directory, Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp"));
    }

    // The mode is given to open(2) itself: a chmod after writing would leave a window in which the content is
    // readable with the umask's default mode.
    private static FileStreamOptions Options(UnixFileMode mode, FileOptions options) => new()
    {
        Mode = FileMode.CreateNew,
        Access = FileAccess.Write,
        Share = FileShare.None,
        Options = options,
        UnixCreateMode = mode,
    };

    private static void Commit(string temporary, string path, string directory)
    {
        File.Move(temporary, path, overwrite: true);
        FileSystemDurability.FsyncDirectory(directory);
    }
}
