using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Registry.Auth;

/// <summary>
/// Users and bcrypt hashes from a file written by <c>htpasswd -B</c> (<c>user:$2y$05$...</c>; <c>$2a$</c>,
/// <c>$2b$</c> and <c>$2y$</c> accepted; blank lines and <c>#</c> comments skipped). The file is re-read
/// when its modification time or size changes (checked at most once per <see cref="ReloadCheckInterval"/>),
/// so adding a user needs no restart. A file that becomes invalid is logged and the last good users stay.
/// </summary>
public sealed partial class HtpasswdFile
{
    /// <summary>How often the file's mtime is looked at; a stat per request would be wasted work.</summary>
    public static readonly TimeSpan ReloadCheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a successful verification is remembered. A pull makes dozens of requests and bcrypt costs
    /// milliseconds (by design); a minute keeps that off the hot path while a changed password still
    /// takes effect quickly (the cache is also dropped whenever the file is reloaded).
    /// </summary>
    public static readonly TimeSpan VerificationCacheLifetime = TimeSpan.FromMinutes(1);

    private const int MaxCachedVerifications = 10_000;

    // Verified against when the user is unknown, so a wrong user name costs as much as a wrong password
    // and response times do not reveal which users exist.
    private static readonly Lazy<string> UnknownUserHash = new(() => BCrypt.Net.BCrypt.HashPassword(Guid.NewGuid().ToString(), 5));

    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Lock _reloadLock = new();

    // Cache keys are an HMAC of user and password under a key that lives only in this process, so the
    // cache never holds anything from which a password could be recovered offline.
    private readonly byte[] _cacheKey = RandomNumberGenerator.GetBytes(32);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _verified = new(StringComparer.Ordinal);
    private long _bcryptChecks;

    private volatile Snapshot _current;
    private DateTimeOffset _lastCheck;

    /// <summary>Reads <paramref name="path"/> now; throws <see cref="AuthConfigurationException"/> naming
    /// file and line of every bad entry.</summary>
    public HtpasswdFile(string path, TimeProvider timeProvider, ILogger<HtpasswdFile>? logger = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        _timeProvider = timeProvider;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _current = Read(Path);
        _lastCheck = timeProvider.GetUtcNow();
    }

    public string Path { get; }

    /// <summary>The user names currently loaded.</summary>
    public IReadOnlyCollection<string> Users => ReloadIfChanged().Hashes.Keys;

    /// <summary>True when <paramref name="password"/> is the password of <paramref name="user"/>.</summary>
    /// <summary>bcrypt verifications run so far (what the cache saves is counted, not timed).</summary>
    internal long BcryptChecks => Interlocked.Read(ref _bcryptChecks);

    public bool Verify(string user, string password)
    {
        var snapshot = ReloadIfChanged();
        var now = _timeProvider.GetUtcNow();
        var key = CacheKey(snapshot.Generation, user, password);
        if (_verified.TryGetValue(key, out var expires) && expires > now)
        {
            return true;
        }

        Interlocked.Increment(ref _bcryptChecks);
        if (!snapshot.Hashes.TryGetValue(user, out var hash))
        {
            _ = BCrypt.Net.BCrypt.Verify(password, UnknownUserHash.Value);
            return false;
        }

        if (!BCrypt.Net.BCrypt.Verify(password, hash))
        {
            return false;
        }

        if (_verified.Count >= MaxCachedVerifications)
        {
            _verified.Clear();
        }

        _verified[key] = now + VerificationCacheLifetime;
        return true;
    }

    private Snapshot ReloadIfChanged()
    {
        var snapshot = _current;
        var now = _timeProvider.GetUtcNow();
        if (now - _lastCheck < ReloadCheckInterval)
        {
            return snapshot;
        }

        lock (_reloadLock)
        {
            if (now - _lastCheck < ReloadCheckInterval)
            {
                return _current;
            }

            _lastCheck = now;
            var info = new FileInfo(Path);
            if (!info.Exists)
            {
                LogMissing(_logger, Path);
                return _current;
            }

            if (info.LastWriteTimeUtc == _current.LastWriteUtc && info.Length == _current.Length)
            {
                return _current;
            }

            try
            {
                var fresh = Read(Path) with { Generation = _current.Generation + 1 };
                _current = fresh;
                _verified.Clear();
                LogReloaded(_logger, Path, fresh.Hashes.Count);
            }
            catch (AuthConfigurationException e)
            {
                LogInvalid(_logger, e, Path);
            }

            return _current;
        }
    }

    private string CacheKey(long generation, string user, string password)
    {
        var material = Encoding.UTF8.GetBytes($"{generation}\0{user}\0{password}");
        try
        {
            return Convert.ToBase64String(HMACSHA256.HashData(_cacheKey, material));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(material);
        }
    }

    private static Snapshot Read(string path)
    {
        FileInfo info;
        string[] lines;
        try
        {
            info = new FileInfo(path);
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AuthConfigurationException($"{path}: cannot read htpasswd file: {e.Message}", e);
        }

        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        var problems = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var where = $"{path}:{i + 1}";
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                problems.Add($"{where}: expected \"user:hash\" as written by htpasswd -B");
                continue;
            }

            var user = line[..colon];
            var hash = line[(colon + 1)..];
            if (!BcryptHash().IsMatch(hash))
            {
                problems.Add($"{where}: user \"{user}\" has {DescribeHash(hash)}; only bcrypt hashes ($2y$, $2b$, $2a$ as written by htpasswd -B) are supported");
                continue;
            }

            if (!hashes.TryAdd(user, hash))
            {
                problems.Add($"{where}: user \"{user}\" appears more than once");
            }
        }

        if (problems.Count > 0)
        {
            throw new AuthConfigurationException(problems);
        }

        return new Snapshot(hashes, info.LastWriteTimeUtc, info.Length, 0);
    }

    private static string DescribeHash(string hash) => hash switch
    {
        "" => "an empty hash",
        _ when hash.StartsWith("$apr1$", StringComparison.Ordinal) => "an MD5 (apr1) hash",
        _ when hash.StartsWith("{SHA}", StringComparison.Ordinal) => "a SHA-1 hash",
        _ when hash.StartsWith("$5$", StringComparison.Ordinal) => "a SHA-256 crypt hash",
        _ when hash.StartsWith("$6$", StringComparison.Ordinal) => "a SHA-512 crypt hash",
        _ when hash.StartsWith("$2", StringComparison.Ordinal) => "a malformed bcrypt hash",
        _ => "an unsupported hash (crypt or plain text)",
    };

    [System.Text.RegularExpressions.GeneratedRegex(@"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}\z")]
    internal static partial System.Text.RegularExpressions.Regex BcryptHash();

    [LoggerMessage(Level = LogLevel.Information, Message = "Reloaded htpasswd file {Path} with {UserCount} users")]
    private static partial void LogReloaded(ILogger logger, string path, int userCount);

    [LoggerMessage(Level = LogLevel.Error, Message = "htpasswd file {Path} changed but is invalid; keeping the previous users")]
    private static partial void LogInvalid(ILogger logger, Exception exception, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "htpasswd file {Path} is missing; keeping the previous users")]
    private static partial void LogMissing(ILogger logger, string path);

    private sealed record Snapshot(Dictionary<string, string> Hashes, DateTime LastWriteUtc, long Length, long Generation);
}
