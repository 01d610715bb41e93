using Airlock.Registry.Auth;

namespace Airlock.Tests.Registry.Auth;

public sealed class HtpasswdFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-htpasswd-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>A line as <c>htpasswd -B</c> writes it ($2y$, cost 5).</summary>
    internal static string Entry(string user, string password, char revision = 'y') =>
        $"{user}:{BCrypt.Net.BCrypt.HashPassword(password, BCrypt.Net.BCrypt.GenerateSalt(5, revision))}";

    private string Write(params string[] lines)
    {
        var path = Path.Combine(_directory, "htpasswd");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void Accepts_2y_2b_and_2a_bcrypt_entries_and_checks_passwords()
    {
        var path = Write(
            "# written by htpasswd -B",
            Entry("alice", "wonderland"),
            "",
            Entry("bob", "builder", 'b'),
            Entry("carol", "singer", 'a'));
        var file = new HtpasswdFile(path, new ManualTimeProvider());

        Assert.StartsWith("alice:$2y$05$", File.ReadAllLines(path)[1], StringComparison.Ordinal);
        Assert.Equal(["alice", "bob", "carol"], file.Users.Order());
        Assert.True(file.Verify("alice", "wonderland"));
        Assert.True(file.Verify("bob", "builder"));
        Assert.True(file.Verify("carol", "singer"));
        Assert.False(file.Verify("alice", "builder"));
        Assert.False(file.Verify("nobody", "wonderland"));
    }

    [Fact]
    public void Other_hash_kinds_are_refused_naming_file_line_and_user_all_at_once()
    {
        var path = Write(
            Entry("alice", "wonderland"),
            "bob:$apr1$x9Yr/Pq1$6D0Ov7yE2JQ6Hyb3Zy2lD/",
            "carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            "no-colon-here",
            "dave:plaintext");

        var error = Assert.Throws<AuthConfigurationException>(() => new HtpasswdFile(path, new ManualTimeProvider()));

        Assert.Equal(4, error.Problems.Count);
        Assert.StartsWith($"{path}:2: user \"bob\" has an MD5 (apr1) hash", error.Problems[0], StringComparison.Ordinal);
        Assert.StartsWith($"{path}:3: user \"carol\" has a SHA-1 hash", error.Problems[1], StringComparison.Ordinal);
        Assert.StartsWith($"{path}:4: expected \"user:hash\"", error.Problems[2], StringComparison.Ordinal);
        Assert.StartsWith($"{path}:5: user \"dave\" has an unsupported hash", error.Problems[3], StringComparison.Ordinal);
        Assert.All(error.Problems, p => Assert.DoesNotContain("wonderland", p, StringComparison.Ordinal));
    }

    [Fact]
    public void A_missing_file_is_an_error_naming_it()
    {
        var path = Path.Combine(_directory, "absent");

        var error = Assert.Throws<AuthConfigurationException>(() => new HtpasswdFile(path, new ManualTimeProvider()));

        Assert.StartsWith($"{path}: cannot read htpasswd file", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_changed_file_is_reloaded_after_the_check_interval()
    {
        var clock = new ManualTimeProvider();
        var path = Write(Entry("alice", "wonderland"));
        var file = new HtpasswdFile(path, clock);
        Assert.True(file.Verify("alice", "wonderland"));

        Write(Entry("alice", "changed"), Entry("bob", "builder"));
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(1));

        // Within the check interval the old users are still in force (no stat per request) ...
        Assert.True(file.Verify("alice", "wonderland"));
        clock.Advance(HtpasswdFile.ReloadCheckInterval);

        // ... then the new file applies, and the cached verification of the old password is gone.
        Assert.False(file.Verify("alice", "wonderland"));
        Assert.True(file.Verify("alice", "changed"));
        Assert.True(file.Verify("bob", "builder"));
    }

    [Fact]
    public void A_file_that_becomes_invalid_keeps_the_last_good_users()
    {
        var clock = new ManualTimeProvider();
        var path = Write(Entry("alice", "wonderland"));
        var file = new HtpasswdFile(path, clock);

        Write("alice:$apr1$broken");
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(1));
        clock.Advance(HtpasswdFile.ReloadCheckInterval);

        Assert.True(file.Verify("alice", "wonderland"));
    }

    [Fact]
    public void A_bcrypt_hash_with_a_trailing_newline_is_not_a_bcrypt_hash()
    {
        var hash = BCrypt.Net.BCrypt.HashPassword("wonderland", BCrypt.Net.BCrypt.GenerateSalt(4, 'y'));
        Assert.Matches(HtpasswdFile.BcryptHash(), hash);
        Assert.DoesNotMatch(HtpasswdFile.BcryptHash(), hash + "\n");
    }

    [Fact]
    public void Successful_verifications_are_cached_so_repeated_requests_skip_bcrypt()
    {
        var path = Path.Combine(_directory, "htpasswd");
        // What is saved is counted, not timed: a timing comparison fails on a busy machine.
        File.WriteAllText(path, $"alice:{BCrypt.Net.BCrypt.HashPassword("wonderland", BCrypt.Net.BCrypt.GenerateSalt(4, 'y'))}\n");
        var clock = new ManualTimeProvider();
        var file = new HtpasswdFile(path, clock);

        Assert.True(file.Verify("alice", "wonderland"));
        Assert.Equal(1, file.BcryptChecks);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(file.Verify("alice", "wonderland"));
        }

        Assert.Equal(1, file.BcryptChecks);

        // A wrong password is never answered from the cache.
        Assert.False(file.Verify("alice", "wonderland!"));
        Assert.Equal(2, file.BcryptChecks);
        // After the cache lifetime bcrypt runs again (and still succeeds).
        clock.Advance(HtpasswdFile.VerificationCacheLifetime);
        Assert.True(file.Verify("alice", "wonderland"));
        Assert.Equal(3, file.BcryptChecks);
    }
}
