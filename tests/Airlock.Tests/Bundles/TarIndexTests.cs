using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Oci;

namespace Airlock.Tests.Bundles;

/// <summary>
/// The tar indexer on its own, before any image format is looked at: what it accepts is indexed exactly (names,
/// offsets, links, content digests), and every hostile or broken tar is refused naming the entry, with no spool left.
/// </summary>
public sealed class TarIndexTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly string _spool;

    public TarIndexTests()
    {
        _spool = _temp.File("spool");
        Directory.CreateDirectory(_spool);
    }

    public void Dispose() => _temp.Dispose();

    private ArchiveLimits Limits => new() { SpoolDirectory = _spool };

    private string Tar(string name, Action<TarWriter> write, bool gzip = false)
    {
        var path = _temp.File(name);
        using var file = File.Create(path);
        using Stream output = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        using var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        write(writer);
        return path;
    }

    private static void AddFile(TarWriter writer, string name, string content) =>
        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });

    private static void AddLink(TarWriter writer, TarEntryType type, string name, string target) =>
        writer.WriteEntry(new PaxTarEntry(type, name) { LinkName = target });

    private async Task<BundleFormatException> RefusedAsync(string archive, string entry)
    {
        var error = await Assert.ThrowsAsync<BundleFormatException>(() => TarIndex.ReadAsync(archive, Limits, CancellationToken.None));
        Assert.Equal(archive, error.File);
        Assert.Equal(entry, error.Entry);
        Assert.Empty(Directory.GetFileSystemEntries(_spool));
        return error;
    }

    private static async Task<string> ReadAsync(TarIndex index, string name)
    {
        var file = index.Files[name];
        return Encoding.UTF8.GetString(await index.ReadVerifiedAsync(file, file.Digest, CancellationToken.None));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Files_and_links_that_stay_inside_are_indexed_by_canonical_name_with_their_content(bool gzip)
    {
        var archive = Tar("good.tar", w =>
        {
            AddFile(w, "./dir//a.txt", "alpha");
            AddLink(w, TarEntryType.SymbolicLink, "dir/sub/up", "../a.txt");
            AddLink(w, TarEntryType.HardLink, "hard", "dir/a.txt");
            AddLink(w, TarEntryType.SymbolicLink, "chain", "dir/sub/up");
            AddFile(w, $"blobs/sha256/{Digest.Sha256("beta"u8).Encoded}", "beta");
        }, gzip);

        using var index = await TarIndex.ReadAsync(archive, Limits, CancellationToken.None);

        Assert.Equal(gzip ? ArchiveCompression.Gzip : ArchiveCompression.None, index.Compression);
        Assert.Equal(gzip, index.SpoolPath is not null && File.Exists(index.SpoolPath));
        foreach (var name in new[] { "dir/a.txt", "dir/sub/up", "hard", "chain" })
        {
            Assert.Equal("alpha", await ReadAsync(index, name));
        }

        Assert.Equal(Digest.Sha256("alpha"u8), index.Files["chain"].Digest);
        Assert.Equal("beta", await ReadAsync(index, $"blobs/sha256/{Digest.Sha256("beta"u8).Encoded}"));
        Assert.True(index.Blobs.ContainsKey(Digest.Sha256("beta"u8)));
        var spool = index.SpoolPath;
        index.Dispose();
        Assert.Empty(Directory.GetFileSystemEntries(_spool));
        Assert.True(spool is null || !File.Exists(spool));
    }

    [Theory]
    [InlineData("../escape", "contains \"..\"")]
    [InlineData("a/../../escape", "contains \"..\"")]
    [InlineData("/etc/passwd", "is an absolute path")]
    [InlineData("dir\\file", "is an absolute path")]
    public async Task A_name_that_leaves_the_archive_is_refused(string name, string problem)
    {
        var error = await RefusedAsync(Tar("name.tar", w => AddFile(w, name, "x")), name);

        Assert.Contains(problem, error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(TarEntryType.SymbolicLink, "/etc/shadow", "points outside the archive")]
    [InlineData(TarEntryType.SymbolicLink, "../../outside", "points outside the archive")]
    [InlineData(TarEntryType.HardLink, "../outside", "hard link target")]
    [InlineData(TarEntryType.HardLink, "/etc/shadow", "hard link target")]
    [InlineData(TarEntryType.SymbolicLink, "missing", "not a file in the archive")]
    public async Task A_link_that_escapes_or_leads_nowhere_is_refused(TarEntryType type, string target, string problem)
    {
        var error = await RefusedAsync(Tar("link.tar", w => AddLink(w, type, "dir/link", target)), "dir/link");

        Assert.Contains(problem, error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_loop_of_links_is_refused_instead_of_followed_forever()
    {
        var archive = Tar("loop.tar", w =>
        {
            AddLink(w, TarEntryType.SymbolicLink, "a", "b");
            AddLink(w, TarEntryType.SymbolicLink, "b", "a");
        });

        var error = await Assert.ThrowsAsync<BundleFormatException>(() => TarIndex.ReadAsync(archive, Limits, CancellationToken.None));

        Assert.Contains("not a file in the archive", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_link_under_blobs_whose_target_is_other_content_is_refused()
    {
        var named = $"blobs/sha256/{Digest.Sha256("expected"u8).Encoded}";
        var error = await RefusedAsync(Tar("blob-link.tar", w =>
        {
            AddFile(w, "layer.tar", "other");
            AddLink(w, TarEntryType.SymbolicLink, named, "../../layer.tar");
        }), named);

        Assert.Contains("content does not match its name", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("dir/x", "dir/./x")]
    [InlineData("dir/x", "dir//x")]
    [InlineData("x", "./x")]
    public async Task An_entry_that_appears_twice_under_two_spellings_is_refused(string first, string second)
    {
        var error = await RefusedAsync(Tar("twice.tar", w =>
        {
            AddFile(w, first, "one");
            AddFile(w, second, "two");
        }), second);

        Assert.Contains("appears twice", error.Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("blobs/sha256/not-a-digest", "is not named <algorithm>/<digest>")]
    [InlineData("blobs/md5/d41d8cd98f00b204e9800998ecf8427e", "digest algorithm \"md5\" is not supported")]
    [InlineData("blobs/sha256/a/b", "is not named <algorithm>/<digest>")]
    public async Task A_file_under_blobs_that_is_not_named_by_a_supported_digest_is_refused(string name, string problem)
    {
        var error = await RefusedAsync(Tar("blobs.tar", w => AddFile(w, name, "x")), name);

        Assert.Contains(problem, error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_plain_tar_cut_inside_an_entry_is_refused_as_truncated()
    {
        var archive = Tar("cut.tar", w => AddFile(w, "big", new string('x', 100_000)));
        using (var file = File.OpenWrite(archive))
        {
            file.SetLength(file.Length - 60_000);
        }

        var error = await RefusedAsync(archive, "big");

        Assert.Contains("truncated", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_compressed_tar_cut_short_is_refused_and_its_spool_removed()
    {
        var archive = Tar("cut.tar.gz", w => AddFile(w, "big", Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(200_000))), gzip: true);
        using (var file = File.OpenWrite(archive))
        {
            file.SetLength(file.Length / 2);
        }

        var error = await Assert.ThrowsAsync<BundleFormatException>(() => TarIndex.ReadAsync(archive, Limits, CancellationToken.None));

        Assert.Contains("truncated", error.Problem, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_spool));
    }

    [Fact]
    public async Task Expansion_beyond_the_limit_is_refused_while_decompressing()
    {
        var archive = Tar("bomb.tar.gz", w => AddFile(w, "zeros", new string('\0', 4 << 20)), gzip: true);

        var error = await Assert.ThrowsAsync<BundleFormatException>(() =>
            TarIndex.ReadAsync(archive, Limits with { MaxExpandedBytes = 1 << 20 }, CancellationToken.None));

        Assert.Contains("limit of 1048576 bytes", error.Problem, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(_spool));
    }

    [Fact]
    public async Task A_device_entry_is_refused()
    {
        var error = await RefusedAsync(Tar("dev.tar", w => w.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, "dev/tty"))), "dev/tty");

        Assert.Contains("CharacterDevice", error.Problem, StringComparison.Ordinal);
    }
}
