using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

/// <summary>
/// Archives come from outside (the images directory imports whatever is dropped there): every hostile or
/// broken one is refused with a message naming the file, the entry and the problem, and nothing is left
/// behind — in particular nothing outside the spool folder.
/// </summary>
public sealed class ArchiveSafetyTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly string _spool;

    public ArchiveSafetyTests()
    {
        _spool = _temp.File("spool");
        Directory.CreateDirectory(_spool);
    }

    public void Dispose() => _temp.Dispose();

    private async Task<BundleFormatException> RefusedAsync(string archive, ArchiveLimits? limits = null)
    {
        var error = await Assert.ThrowsAsync<BundleFormatException>(async () =>
        {
            await using var source = await ArchiveSource.OpenAsync(archive, (limits ?? new ArchiveLimits()) with { SpoolDirectory = _spool }, CancellationToken.None);
        });
        Assert.Equal(archive, error.File);
        Assert.StartsWith(archive, error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_spool));
        Assert.Equal(new[] { Path.GetFileName(archive), "spool" }.Order(), Directory.GetFileSystemEntries(_temp.Path).Select(Path.GetFileName).Where(n => n != "good").Order());
        return error;
    }

    private string Tar(string name, Action<TarWriter> write)
    {
        var path = _temp.File(name);
        using var file = File.Create(path);
        using var writer = new TarWriter(file, TarEntryFormat.Pax);
        write(writer);
        return path;
    }

    private static void AddFile(TarWriter writer, string name, byte[] content) =>
        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });

    private static void AddFile(TarWriter writer, string name, string content) => AddFile(writer, name, Encoding.UTF8.GetBytes(content));

    /// <summary>A valid single-image docker archive written by Airlock, as raw tar entries.</summary>
    private async Task<List<(string Name, byte[] Content)>> GoodEntriesAsync()
    {
        var layout = OciLayoutStore.Create(_temp.File("good/layout"));
        await using (layout)
        {
            var image = await TestImages.AddImageAsync(layout, TestImages.Amd64, [TestImages.MakeLayer(7)], "example.com/app:1");
            await using var archive = ArchiveTarget.Create(_temp.File("good/good.tar"));
            await ImageGraph.CopyAsync(layout, archive, image, new CopyOptions { Reference = "example.com/app:1" }, null, CancellationToken.None);
            await archive.CompleteAsync(CancellationToken.None);
        }

        var entries = new List<(string, byte[])>();
        using var reader = new TarReader(File.OpenRead(_temp.File("good/good.tar")));
        while (reader.GetNextEntry(copyData: true) is { } entry)
        {
            if (entry.EntryType == TarEntryType.RegularFile)
            {
                using var content = new MemoryStream();
                entry.DataStream!.CopyTo(content);
                entries.Add((entry.Name, content.ToArray()));
            }
        }

        return entries;
    }

    [Fact]
    public async Task Entry_with_dot_dot_is_refused()
    {
        var archive = Tar("dotdot.tar", w => AddFile(w, "../x", "escape"));
        var error = await RefusedAsync(archive);
        Assert.Equal("../x", error.Entry);
        Assert.Contains("\"..\"", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.File("x")));
    }

    [Fact]
    public async Task Entry_with_absolute_path_is_refused()
    {
        var error = await RefusedAsync(Tar("abs.tar", w => AddFile(w, "/tmp/airlock-abs-escape", "escape")));
        Assert.Equal("/tmp/airlock-abs-escape", error.Entry);
        Assert.Contains("absolute path", error.Problem, StringComparison.Ordinal);
        Assert.False(File.Exists("/tmp/airlock-abs-escape"));
    }

    [Theory]
    [InlineData("etc-link", "/etc/passwd")]
    [InlineData("blobs/sha256/up", "../../../etc/passwd")]
    public async Task Symbolic_link_pointing_outside_is_refused(string name, string target)
    {
        var error = await RefusedAsync(Tar("symlink.tar", w => w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target })));
        Assert.Equal(name, error.Entry);
        Assert.Contains("points outside the archive", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hard_link_pointing_outside_is_refused()
    {
        var error = await RefusedAsync(Tar("hardlink.tar", w => w.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "h") { LinkName = "../../etc/shadow" })));
        Assert.Equal("h", error.Entry);
        Assert.Contains("hard link target", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Link_to_an_entry_the_archive_lacks_is_refused()
    {
        var error = await RefusedAsync(Tar("dangling.tar", w => w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "a/layer.tar") { LinkName = "../b/layer.tar" })));
        Assert.Equal("a/layer.tar", error.Entry);
        Assert.Contains("not a file in the archive", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(TarEntryType.CharacterDevice)]
    [InlineData(TarEntryType.BlockDevice)]
    [InlineData(TarEntryType.Fifo)]
    public async Task Device_files_are_refused(TarEntryType type)
    {
        var error = await RefusedAsync(Tar("device.tar", w => w.WriteEntry(new PaxTarEntry(type, "dev/null-ish"))));
        Assert.Equal("dev/null-ish", error.Entry);
        Assert.Contains(type.ToString(), error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Duplicate_entries_are_refused()
    {
        var error = await RefusedAsync(Tar("dup.tar", w =>
        {
            AddFile(w, "index.json", """{"schemaVersion":2,"manifests":[]}""");
            AddFile(w, "./index.json", """{"schemaVersion":2,"manifests":[]}""");
        }));
        Assert.Equal("./index.json", error.Entry);
        Assert.Contains("twice", error.Problem, StringComparison.Ordinal);
    }

    /// <summary>
    /// Blobs are read in place and verified as they are read, so a tampered layer is refused when the copy
    /// reaches it — naming the archive and the entry — and the manifest that needs it is never written.
    /// </summary>
    [Theory]
    [InlineData("tampered.tar", ArchiveCompression.None)]
    [InlineData("tampered.tar.zst", ArchiveCompression.Zstd)]
    public async Task Blob_whose_content_is_not_its_name_is_refused_when_read_and_no_manifest_is_written(string name, ArchiveCompression compression)
    {
        var entries = await GoodEntriesAsync();
        var victim = entries.First(e => e.Name.StartsWith("blobs/sha256/", StringComparison.Ordinal) && e.Content.Length > 1000);
        var archive = _temp.File(name);
        using (var file = File.Create(archive))
        {
            var compressed = ArchiveCodecs.OpenWrite(file, compression);
            using (var writer = new TarWriter(compressed, TarEntryFormat.Pax, leaveOpen: true))
            {
                foreach (var (entryName, content) in entries)
                {
                    var bytes = entryName == victim.Name ? [.. content.Take(content.Length - 1), (byte)(content[^1] ^ 0xff)] : content;
                    AddFile(writer, entryName, bytes);
                }
            }

            if (!ReferenceEquals(compressed, file))
            {
                compressed.Dispose();
            }
        }

        var error = await Assert.ThrowsAsync<BundleFormatException>(async () =>
        {
            await using var source = await ArchiveSource.OpenAsync(archive, new ArchiveLimits { SpoolDirectory = _spool }, CancellationToken.None);
            await using var target = OciLayoutStore.Create(_temp.File("target"));
            try
            {
                await ImageGraph.CopyAsync(source, target, source.Entries[0], new CopyOptions { Reference = "example.com/app:1" }, null, CancellationToken.None);
            }
            finally
            {
                Assert.Empty(target.Entries);
                Assert.False(File.Exists(target.BlobPath(source.Entries[0].Digest)));
            }
        });
        Assert.Equal(archive, error.File);
        Assert.Equal(victim.Name, error.Entry);
        Assert.Contains("does not match its name", error.Problem, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_spool));
    }

    [Fact]
    public async Task Archive_cut_short_after_it_was_opened_is_refused_when_the_blob_is_read()
    {
        var entries = await GoodEntriesAsync();
        var archive = Tar("shrinking.tar", w =>
        {
            foreach (var (entryName, content) in entries.OrderBy(e => e.Content.Length))
            {
                AddFile(w, entryName, content);
            }
        });
        var largest = entries.MaxBy(e => e.Content.Length);
        await using var source = await ArchiveSource.OpenAsync(archive, new ArchiveLimits { SpoolDirectory = _spool }, CancellationToken.None);
        using (var file = new FileStream(archive, FileMode.Open, FileAccess.Write))
        {
            file.SetLength(file.Length - 2048 - largest.Content.Length / 2);
        }

        var digest = Digest.Parse("sha256:" + largest.Name["blobs/sha256/".Length..]);
        var error = await Assert.ThrowsAsync<BundleFormatException>(async () =>
        {
            await using var blob = await source.OpenBlobAsync(new Descriptor { MediaType = MediaTypes.OciLayer, Digest = digest, Size = largest.Content.Length },
                CancellationToken.None);
            await blob.CopyToAsync(Stream.Null);
        });
        Assert.Equal(largest.Name, error.Entry);
        Assert.Contains("truncated", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Manifest_naming_a_blob_the_archive_lacks_is_refused()
    {
        var entries = await GoodEntriesAsync();
        var layout = OciLayoutStore.Create(_temp.File("good/layout"));
        var manifest = await layout.ReadManifestAsync(await layout.ResolveAsync("example.com/app:1", CancellationToken.None), CancellationToken.None);
        var layer = ManifestDocument.Parse(manifest.Span, MediaTypes.OciManifest).Layers[0].Digest;
        var error = await RefusedAsync(Tar("missing.tar", w =>
        {
            foreach (var (name, content) in entries.Where(e => e.Name != $"blobs/sha256/{layer.Encoded}"))
            {
                AddFile(w, name, content);
            }
        }));
        Assert.Contains(layer.ToString(), error.Problem, StringComparison.Ordinal);
        Assert.Contains("not in the archive", error.Problem, StringComparison.Ordinal);
        Assert.StartsWith("blobs/sha256/", error.Entry, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Docker_manifest_json_naming_a_missing_layer_is_refused()
    {
        var error = await RefusedAsync(Tar("docker-missing.tar", w =>
        {
            AddFile(w, "abc.json", "{}");
            AddFile(w, "manifest.json", """[{"Config":"abc.json","RepoTags":["x:1"],"Layers":["deadbeef/layer.tar"]}]""");
        }));
        Assert.Equal("manifest.json", error.Entry);
        Assert.Contains("deadbeef/layer.tar", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("truncated.tar.gz", ArchiveCompression.Gzip)]
    [InlineData("truncated.tar.zst", ArchiveCompression.Zstd)]
    [InlineData("truncated.tar", ArchiveCompression.None)]
    public async Task Truncated_archives_are_refused(string name, ArchiveCompression compression)
    {
        var entries = await GoodEntriesAsync();
        var whole = new MemoryStream();
        var compressed = ArchiveCodecs.OpenWrite(whole, compression);
        using (var writer = new TarWriter(compressed, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (entryName, content) in entries.OrderByDescending(e => e.Content.Length))
            {
                AddFile(writer, entryName, content);
            }
        }

        if (!ReferenceEquals(compressed, whole))
        {
            compressed.Dispose();
        }

        var path = _temp.File(name);
        File.WriteAllBytes(path, whole.ToArray()[..(int)(whole.Length / 2)]);
        var error = await RefusedAsync(path);
        Assert.Contains("truncated", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Plain_text_named_tar_gz_is_refused_as_unknown_format()
    {
        var path = _temp.File("images.tar.gz");
        File.WriteAllText(path, "this is not an archive, only text that someone named .tar.gz\n");
        var error = await RefusedAsync(path);
        Assert.Contains("unknown format", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Random_bytes_are_refused_as_unknown_format()
    {
        var path = _temp.File("random.bin");
        var bytes = new byte[4096];
        new Random(3).NextBytes(bytes);
        bytes[0] = 0x00;
        File.WriteAllBytes(path, bytes);
        var error = await RefusedAsync(path);
        Assert.Contains("unknown format", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tar_without_index_json_or_manifest_json_is_not_an_image_archive()
    {
        var error = await RefusedAsync(Tar("plain.tar", w => AddFile(w, "README", "hello")));
        Assert.Contains("not an image archive", error.Problem, StringComparison.Ordinal);
    }

    private string ZstdOfZeros(string name, long zeros)
    {
        var path = _temp.File(name);
        using var file = File.Create(path);
        using var zstd = ArchiveCodecs.OpenWrite(file, ArchiveCompression.Zstd);
        using var writer = new TarWriter(zstd, TarEntryFormat.Pax, leaveOpen: true);
        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "zeros") { DataStream = new ZeroStream(zeros) });
        return path;
    }

    [Fact]
    public async Task Zstd_bomb_over_the_expansion_limit_is_refused()
    {
        var path = ZstdOfZeros("bomb.tar.zst", 64L << 20);
        Assert.True(new FileInfo(path).Length < 64 * 1024);
        var error = await RefusedAsync(path, new ArchiveLimits { MaxExpandedBytes = 16L << 20 });
        Assert.Contains("limit of 16777216 bytes", error.Problem, StringComparison.Ordinal);
        Assert.Equal("zeros", error.Entry);
    }

    [Fact]
    public async Task Zstd_bomb_over_the_expansion_ratio_is_refused()
    {
        var path = ZstdOfZeros("ratio.tar.zst", 64L << 20);
        var error = await RefusedAsync(path, new ArchiveLimits { MaxExpansionRatio = 100, RatioGraceBytes = 1 << 20 });
        Assert.Contains("expands more than 100:1", error.Problem, StringComparison.Ordinal);
    }

    private sealed class ZeroStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        // TarWriter wants a seekable data stream to know its length up front.
        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => _position = value;
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            Array.Clear(buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
