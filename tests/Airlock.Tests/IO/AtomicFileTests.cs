using System.Text;
using Airlock.IO;

namespace Airlock.Tests.IO;

public sealed class AtomicFileTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("airlock-atomic-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task A_private_file_is_0600_from_its_first_byte_not_chmodded_after_the_content_is_written()
    {
        var path = Path.Combine(_root, "etc", "config.toml");
        UnixFileMode? modeBeforeWriting = null;
        long? lengthThen = null;
        await AtomicFile.WriteAsync(path, AtomicFile.Private, (stream, token) =>
        {
            // The temporary file the content goes to, observed before any byte reaches it.
            var temporary = ((FileStream)stream).Name;
            modeBeforeWriting = File.GetUnixFileMode(temporary);
            lengthThen = new FileInfo(temporary).Length;
            return stream.WriteAsync("password = \"secret\"\n"u8.ToArray(), token).AsTask();
        }, CancellationToken.None);

        Assert.Equal(0, lengthThen);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, modeBeforeWriting);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal("password = \"secret\"\n", File.ReadAllText(path));
    }

    [Fact]
    public void Replacing_a_world_readable_file_with_a_private_one_narrows_its_mode()
    {
        var path = Path.Combine(_root, "key.pem");
        AtomicFile.Write(path, "old"u8);
        Assert.Equal(AtomicFile.Readable, File.GetUnixFileMode(path) & AtomicFile.Readable);

        AtomicFile.Write(path, "new"u8, AtomicFile.Private);

        Assert.Equal(AtomicFile.Private, File.GetUnixFileMode(path));
        Assert.Equal("new", File.ReadAllText(path));
    }

    [Fact]
    public async Task A_write_that_fails_leaves_the_old_content_and_no_temporary_file()
    {
        var path = Path.Combine(_root, "index.json");
        await AtomicFile.WriteAsync(path, Encoding.UTF8.GetBytes("{\"old\":1}"), AtomicFile.Readable, CancellationToken.None);

        await Assert.ThrowsAsync<InvalidDataException>(() => AtomicFile.WriteAsync(path, AtomicFile.Readable, async (stream, token) =>
        {
            await stream.WriteAsync("{\"half"u8.ToArray(), token);
            throw new InvalidDataException("serializer failed half way");
        }, CancellationToken.None));

        Assert.Equal("{\"old\":1}", File.ReadAllText(path));
        Assert.Equal(["index.json"], Directory.GetFiles(_root).Select(Path.GetFileName));
    }

    [Fact]
    public void The_content_replaces_the_file_through_a_hidden_temporary_name_in_the_same_directory()
    {
        var path = Path.Combine(_root, "tags", "latest");
        AtomicFile.Write(path, "sha256:1"u8);
        AtomicFile.Write(path, "sha256:2"u8);

        Assert.Equal("sha256:2", File.ReadAllText(path));
        Assert.Equal(["latest"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }
}
