using System.Formats.Tar;
using System.Text.Json;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Bundles.Archive;

/// <summary>
/// An image archive being written, streamed: every blob goes straight into the tar as it arrives (a tar
/// entry needs its size first, which the descriptor gives), hashed on the way, into a <c>.partial</c> file
/// beside the output, compressed as asked; <see cref="CompleteAsync"/> adds <c>index.json</c> (and Docker's
/// files) and renames the file into place only when whole. Blobs are written one at a time (a tar is
/// sequential): as an <see cref="ISequentialImageTarget"/> it gets them from a graph copy in a fixed order,
/// with the next ones downloaded ahead into spool files beside the output. Content is hashed once: a stream
/// that already verifies the blob (<see cref="IVerifiedContent"/>) is relied on, anything else is checked
/// here. A blob whose
/// content is not its digest or size spoils the archive: the write fails, every later write and
/// <see cref="CompleteAsync"/> fail too, and disposing removes the partial file, so no half-written archive
/// is ever left under the output name. Blobs shared by images are stored once.
/// <para>
/// <see cref="ArchiveFormat.DockerArchive"/> writes what <c>ctr images export</c> and Docker 25+ write: a tar
/// that is an OCI layout (multi-arch indexes kept whole in <c>index.json</c>) and also carries Docker's
/// <c>manifest.json</c> and <c>repositories</c>, pointing at <c>blobs/sha256/…</c> for the host-platform
/// image of every name, so <c>docker load</c>, <c>podman load</c>, <c>skopeo docker-archive:</c>,
/// <c>ctr images import</c> and the K3s images directory all read it. <see cref="ArchiveFormat.OciLayout"/>
/// writes the OCI layout alone.
/// </para>
/// </summary>
public sealed class ArchiveTarget : ISequentialImageTarget
{
    private const UnixFileMode FileMode644 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    // A file archive is written to _partial and renamed into place; a streamed one (stdout) has neither.
    private readonly string? _partial;
    private readonly FileStream? _file;
    private readonly Stream _output;
    private readonly Stream _compressed;
    private readonly TarWriter _tar;
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly Dictionary<Digest, long> _blobs = [];
    private readonly Dictionary<Digest, byte[]> _manifests = [];
    private readonly HashSet<string> _folders = new(StringComparer.Ordinal);
    private readonly List<Descriptor> _entries = [];
    private string? _spoiled;
    private long _writebackStarted;
    private Task _flushing = Task.CompletedTask;
    private bool _completed;
    private bool _closed;

    private ArchiveTarget(string path, ArchiveFormat format, ArchiveCompression compression)
    {
        Path = path;
        Format = format;
        Compression = compression;
        SpoolDirectory = System.IO.Path.GetDirectoryName(path)!;
        _partial = $"{path}.partial-{Guid.NewGuid():N}";
        _file = new FileStream(_partial, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        _output = _file;
        _compressed = ArchiveCodecs.OpenWrite(_file, compression);
        _tar = new TarWriter(_compressed, TarEntryFormat.Ustar, leaveOpen: true);
    }

    private ArchiveTarget(Stream output, string name, ArchiveFormat format, ArchiveCompression compression, string spoolDirectory)
    {
        Path = name;
        Format = format;
        Compression = compression;
        SpoolDirectory = spoolDirectory;
        _output = output;
        _compressed = ArchiveCodecs.OpenWrite(output, compression);
        _tar = new TarWriter(_compressed, TarEntryFormat.Ustar, leaveOpen: true);
    }

    public string Path { get; }

    public ArchiveFormat Format { get; }

    public ArchiveCompression Compression { get; }

    /// <summary>Blobs downloaded ahead wait beside the output, on the file system that has room for it (a streamed archive: the temp folder).</summary>
    public string SpoolDirectory { get; }

    /// <summary>Starts an archive at <paramref name="path"/>; <paramref name="compression"/> defaults to what the file name says.</summary>
    public static ArchiveTarget Create(string path, ArchiveFormat format = ArchiveFormat.DockerArchive, ArchiveCompression? compression = null)
    {
        var full = System.IO.Path.GetFullPath(path);
        return new ArchiveTarget(full, format, compression ?? ArchiveCodecs.FromFileName(full));
    }

    /// <summary>
    /// Starts an archive written straight into <paramref name="output"/> (<c>-o -</c>: stdout), uncompressed unless asked.
    /// Nothing can be taken back from a stream: an archive that fails half way leaves what was written, and the failure
    /// is the caller's to report. <paramref name="name"/> names it in messages.
    /// </summary>
    public static ArchiveTarget ToStream(Stream output, string name, ArchiveFormat format = ArchiveFormat.DockerArchive, ArchiveCompression? compression = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        return new ArchiveTarget(output, name, format, compression ?? ArchiveCompression.None, System.IO.Path.GetTempPath());
    }

    public ValueTask<bool> HasBlobAsync(Descriptor blob, CancellationToken cancellationToken)
    {
        lock (_blobs)
        {
            return ValueTask.FromResult(_blobs.TryGetValue(blob.Digest, out var size) && size == blob.Size);
        }
    }

    public async ValueTask WriteBlobAsync(Descriptor blob, Stream content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(content);
        await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfSpoiled();
            if (await HasBlobAsync(blob, cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            await WriteBlobEntryAsync(blob, content, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writing.Release();
        }
    }

    public ValueTask<bool> HasManifestAsync(Descriptor manifest, CancellationToken cancellationToken)
    {
        lock (_blobs)
        {
            return ValueTask.FromResult(_manifests.ContainsKey(manifest.Digest));
        }
    }

    public async ValueTask WriteManifestAsync(Descriptor manifest, ReadOnlyMemory<byte> content, string? reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        if (content.Length > OciLayoutStore.MaxManifestSize)
        {
            throw new BundleFormatException(Path, manifest.Digest.ToString(), $"manifest of {content.Length} bytes is larger than the {OciLayoutStore.MaxManifestSize} allowed");
        }

        var bytes = content.ToArray();
        await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfSpoiled();
            if (!await HasBlobAsync(manifest, cancellationToken).ConfigureAwait(false))
            {
                using var stream = new MemoryStream(bytes, writable: false);
                await WriteBlobEntryAsync(manifest, stream, cancellationToken).ConfigureAwait(false);
            }

            lock (_blobs)
            {
                _manifests[manifest.Digest] = bytes;
                if (reference is not null)
                {
                    var entry = OciLayoutStore.NamedEntry(manifest, reference);
                    var name = OciLayoutStore.NameOf(entry);
                    _entries.RemoveAll(e => OciLayoutStore.NameOf(e) == name);
                    _entries.Add(entry);
                }
            }
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>Lists a manifest already written (a referrer) in <c>index.json</c> without a name; unnamed entries are not repeated.</summary>
    public void AddEntry(Descriptor entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_blobs)
        {
            if (!_manifests.ContainsKey(entry.Digest))
            {
                throw new InvalidOperationException($"{Path}: manifest {entry.Digest} has not been written");
            }

            if (!_entries.Any(e => e.Digest == entry.Digest && OciLayoutStore.NameOf(e) == OciLayoutStore.NameOf(entry)))
            {
                _entries.Add(entry);
            }
        }
    }

    /// <summary>Finishes the archive (index.json, Docker's files) and renames it into place; without this, disposing leaves no file.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfSpoiled();
            await EnsureLayoutStartedAsync(cancellationToken).ConfigureAwait(false);
            await WriteFileAsync("index.json", BundleJson.Serialize(new LayoutIndex { Manifests = [.. _entries] }, BundleJsonContext.Default.LayoutIndex),
                cancellationToken).ConfigureAwait(false);
            if (Format == ArchiveFormat.DockerArchive)
            {
                var (manifest, repositories) = DockerManifest();
                await WriteFileAsync("manifest.json", BundleJson.Serialize(manifest, BundleJsonContext.Default.ListDockerArchiveImage), cancellationToken).ConfigureAwait(false);
                await WriteFileAsync("repositories", BundleJson.Serialize(repositories, BundleJsonContext.Default.DictionaryStringDictionaryStringString),
                    cancellationToken).ConfigureAwait(false);
            }

            await CloseAsync().ConfigureAwait(false);
            if (_file is null)
            {
                await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
                _completed = true;
                return;
            }

            await using (_file.ConfigureAwait(false))
            {
                await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
                await _flushing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                _file.Flush(flushToDisk: true);
            }

            File.Move(_partial!, Path, overwrite: true);
            _completed = true;
        }
        catch
        {
            _spoiled ??= "writing the end of the archive failed";
            throw;
        }
        finally
        {
            _writing.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_completed)
        {
            try
            {
                await CloseAsync().ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The archive is being thrown away; a failing codec flush changes nothing.
            }
            catch (InvalidOperationException)
            {
                // Likewise (a compressor disposed after a failed write).
            }

            if (_file is not null)
            {
                await _file.DisposeAsync().ConfigureAwait(false);
                File.Delete(_partial!);
            }
        }

        _writing.Dispose();
    }

    // The tar's end-of-archive blocks, then the compressor's last frame.
    /// <summary>
    /// After each blob: start writeback of what reached the file and, unless one still runs, an fdatasync beside the
    /// writes (as <see cref="BlobIngest"/> does), so the fsync at the end finds little left instead of the whole
    /// archive (about 2 s per GiB on a disk with a write cache).
    /// </summary>
    private async Task KeepWritebackGoingAsync(CancellationToken cancellationToken)
    {
        if (_file is null)
        {
            return;
        }

        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        var end = _file.Position;
        if (end - _writebackStarted < BlobIngest.WritebackWindow)
        {
            return;
        }

        FileSystemDurability.StartWriteback(_file.SafeFileHandle, _writebackStarted, end - _writebackStarted);
        _writebackStarted = end;
        if (_flushing.IsCompleted)
        {
            var file = _file.SafeFileHandle;
            _flushing = Task.Run(() => FileSystemDurability.FlushData(file), CancellationToken.None);
        }
    }

    private async Task CloseAsync()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        await _tar.DisposeAsync().ConfigureAwait(false);
        if (!ReferenceEquals(_compressed, _output))
        {
            // Synchronous dispose: SharpCompress's bzip2 writes its final block only there.
            _compressed.Dispose();
        }
    }

    private void ThrowIfSpoiled()
    {
        if (_spoiled is not null)
        {
            throw new InvalidOperationException($"{Path}: the archive cannot be completed: {_spoiled}");
        }
    }

    // Called under _writing. The entry's header promises blob.Size bytes; content that is not exactly the
    // blob spoils the archive (the tar cannot be taken back), so the whole save fails and leaves no file.
    private async Task WriteBlobEntryAsync(Descriptor blob, Stream content, CancellationToken cancellationToken)
    {
        await EnsureLayoutStartedAsync(cancellationToken).ConfigureAwait(false);
        var folder = $"blobs/{blob.Digest.Algorithm}/";
        if (_folders.Add(folder))
        {
            await _tar.WriteEntryAsync(FolderEntry(folder), cancellationToken).ConfigureAwait(false);
        }

        // Content is hashed once: a source's own verifying stream for this blob, or a spool verified when it was
        // filled, is relied on; anything else is checked here.
        var trusted = content is IVerifiedContent verified && verified.Verifies(blob.Digest, blob.Size);
        var data = trusted ? content : new VerifyingStream(content, blob.Digest, blob.Size, leaveOpen: true);
        try
        {
            try
            {
                var entry = new UstarTarEntry(TarEntryType.RegularFile, folder + blob.Digest.Encoded)
                {
                    DataStream = new KnownLengthStream(data, blob.Size),
                    Mode = FileMode644,
                    ModificationTime = DateTimeOffset.UnixEpoch,
                };
                await _tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);

                // The source must end where the descriptor says; reading its end also verifies the digest.
                if (await data.ReadAsync(new byte[1], cancellationToken).ConfigureAwait(false) != 0)
                {
                    throw new DigestMismatchException(blob.Digest, blob.Digest, $"content is longer than the expected {blob.Size} bytes");
                }

                await KeepWritebackGoingAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _spoiled = $"writing {blob.Digest} failed ({ex.Message})";
                throw;
            }
        }
        finally
        {
            if (!trusted)
            {
                await data.DisposeAsync().ConfigureAwait(false);
            }
        }

        lock (_blobs)
        {
            _blobs[blob.Digest] = blob.Size;
        }
    }

    private async Task EnsureLayoutStartedAsync(CancellationToken cancellationToken)
    {
        if (_folders.Add("blobs/"))
        {
            await WriteFileAsync("oci-layout", """{"imageLayoutVersion":"1.0.0"}"""u8.ToArray(), cancellationToken).ConfigureAwait(false);
            await _tar.WriteEntryAsync(FolderEntry("blobs/"), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Docker's view of the archive: one <c>manifest.json</c> image per image manifest, with every name that
    /// points at it; a multi-arch name contributes its host-platform image (else its first Linux one), since
    /// Docker's format holds one image per name.
    /// </summary>
    private (List<DockerArchiveImage>, Dictionary<string, Dictionary<string, string>>) DockerManifest()
    {
        var images = new List<(Digest Manifest, ManifestDocument Document, List<string> Tags)>();
        var repositories = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        foreach (var entry in _entries)
        {
            var image = ImageManifestForHost(entry);
            if (image is null)
            {
                continue;
            }

            var (descriptor, document) = image.Value;
            var existing = images.FindIndex(i => i.Manifest == descriptor.Digest);
            if (existing < 0)
            {
                images.Add((descriptor.Digest, document, []));
                existing = images.Count - 1;
            }

            if (OciLayoutStore.NameOf(entry) is { } name && OciLayoutStore.IsFullReference(name)
                && ImageReference.TryParse(name, out var reference) && reference.Tag is { } tag)
            {
                images[existing].Tags.Add(reference.ToString());
                if (document.Layers.Count > 0)
                {
                    var repository = repositories.TryGetValue(reference.Name, out var tags) ? tags : repositories[reference.Name] = new(StringComparer.Ordinal);
                    repository[tag] = document.Layers[^1].Digest.Encoded;
                }
            }
        }

        var manifest = images.Select(i => new DockerArchiveImage
        {
            Config = BlobEntry(i.Document.Config!.Digest),
            RepoTags = i.Tags.Count > 0 ? i.Tags : null,
            Layers = i.Document.Layers.Select(l => BlobEntry(l.Digest)).ToList(),
        }).ToList();
        return (manifest, repositories);
    }

    private (Descriptor, ManifestDocument)? ImageManifestForHost(Descriptor entry)
    {
        if (!MediaTypes.IsManifest(entry.MediaType) || !_manifests.TryGetValue(entry.Digest, out var content))
        {
            return null;
        }

        var document = ManifestDocument.Parse(content, entry.MediaType);
        if (!document.IsIndex)
        {
            // Only images: an artifact (a signature, an SBOM) has no place in Docker's manifest.json.
            return document.Subject is null && document.Config?.MediaType is MediaTypes.OciConfig or MediaTypes.DockerConfig ? (entry, document) : null;
        }

        var candidates = document.Manifests.Where(m => MediaTypes.IsImageManifest(m.MediaType)).ToList();
        var chosen = candidates.FirstOrDefault(m => Platform.Host.Matches(m.Platform))
            ?? candidates.FirstOrDefault(m => m.Platform?.Os == "linux" && m.Platform.Architecture != "unknown");
        return chosen is null ? null : ImageManifestForHost(chosen);
    }

    private static string BlobEntry(Digest digest) => $"blobs/{digest.Algorithm}/{digest.Encoded}";

    private static UstarTarEntry FolderEntry(string name) => new(TarEntryType.Directory, name)
    {
        Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
        ModificationTime = DateTimeOffset.UnixEpoch,
    };

    private async Task WriteFileAsync(string name, byte[] content, CancellationToken cancellationToken)
    {
        using var data = new MemoryStream(content, writable: false);
        var entry = new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = data,
            Mode = FileMode644,
            ModificationTime = DateTimeOffset.UnixEpoch,
        };
        await _tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A blob's stream as TarWriter wants it — seekable-looking, so it takes the length for the header
    /// instead of buffering — reading at most <c>length</c> bytes and failing if the content ends before.
    /// </summary>
    private sealed class KnownLengthStream(Stream inner, long length) : DelegatingReadStream(inner, leaveOpen: true)
    {
        private long _read;

        public override bool CanSeek => true;

        public override long Length => length;

        public override long Position
        {
            get => _read;
            set => throw new NotSupportedException();
        }

        // Past the length the inner stream is not asked at all: an empty read of a network body may wait for data.
        public override int Read(Span<byte> buffer) =>
            Wanted(buffer.Length) is > 0 and var wanted ? Checked(base.Read(buffer[..wanted])) : 0;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Wanted(buffer.Length) is > 0 and var wanted ? Checked(await base.ReadAsync(buffer[..wanted], cancellationToken).ConfigureAwait(false)) : 0;

        // TarWriter copies the data with CopyToAsync; in whole 1 MiB chunks the archive file sees few large writes
        // (instead of one per 80 KiB, or per network read).
        public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
        {
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                while (true)
                {
                    var filled = await ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                    if (filled == 0)
                    {
                        return;
                    }

                    await destination.WriteAsync(buffer.AsMemory(0, filled), cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        protected override int OnRead(ReadOnlySpan<byte> read, int asked)
        {
            _read += read.Length;
            return read.Length;
        }

        private int Wanted(int asked) => (int)Math.Min(asked, length - _read);

        private int Checked(int read) => read == 0 && _read < length
            ? throw new EndOfStreamException($"content ended after {_read} of {length} bytes")
            : read;
    }
}
