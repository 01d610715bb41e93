using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.IO;

namespace Airlock.Cluster.Tokens;

/// <summary>A bootstrap token as <c>token list</c> shows it: never its secret, which is stored only as a hash.</summary>
/// <param name="Id">The public half (6 characters), also the handle for <c>token delete</c>.</param>
/// <param name="Expires">Null: never expires (<c>--ttl 0</c>).</param>
public sealed record BootstrapTokenInfo(string Id, string? Description, DateTimeOffset Created, DateTimeOffset? Expires)
{
    public bool IsExpired(DateTimeOffset now) => Expires is { } expires && expires <= now;
}

/// <summary>What is kept per token in <c>server/bootstrap-tokens.json</c>.</summary>
internal sealed record StoredBootstrapToken(string Id, string SecretSha256, string? Description, DateTimeOffset Created, DateTimeOffset? Expires);

/// <summary>
/// Bootstrap tokens (K3s's <c>k3s token create|list|delete</c>): agent join tokens with an optional lifetime. The server keeps
/// only the SHA-256 of each secret (the secret is 80 random bits, printed once by <c>token create</c>), in one JSON file written
/// atomically under a lock, so the CLI and a running server share it: the server reads it at every join, so a token works (or
/// stops working) without a restart.
/// </summary>
public sealed class BootstrapTokenStore(string serverDirectory, TimeProvider timeProvider)
{
    public const string FileName = "bootstrap-tokens.json";
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    private string FilePath => Path.Combine(serverDirectory, FileName);

    private string LockPath => Path.Combine(serverDirectory, FileName + ".lock");

    /// <summary>Creates a token valid for <paramref name="ttl"/> (null: forever); returns it with its secret, the only time it is seen.</summary>
    public async Task<(BootstrapTokenInfo Info, string Secret)> CreateAsync(TimeSpan? ttl, string? description, CancellationToken cancellationToken)
    {
        using var held = await FileLock.AcquireAsync(LockPath, exclusive: true, cancellationToken).ConfigureAwait(false);
        var tokens = Read();
        string id;
        do
        {
            id = RandomString(6);
        }
        while (tokens.Any(t => t.Id == id));

        var secret = RandomString(16);
        var now = timeProvider.GetUtcNow();
        var stored = new StoredBootstrapToken(id, Hash(secret), string.IsNullOrWhiteSpace(description) ? null : description.Trim(), now, ttl is { } t ? now + t : null);
        tokens.Add(stored);
        Write(tokens);
        return (Info(stored), secret);
    }

    public IReadOnlyList<BootstrapTokenInfo> List() => Read().Select(Info).OrderBy(t => t.Created).ToList();

    /// <summary>Deletes the tokens with these ids; returns the ids that did not exist.</summary>
    public async Task<IReadOnlyList<string>> DeleteAsync(IReadOnlyCollection<string> ids, CancellationToken cancellationToken)
    {
        using var held = await FileLock.AcquireAsync(LockPath, exclusive: true, cancellationToken).ConfigureAwait(false);
        var tokens = Read();
        var unknown = ids.Where(id => tokens.All(t => t.Id != id)).ToList();
        if (unknown.Count < ids.Count)
        {
            tokens.RemoveAll(t => ids.Contains(t.Id));
            Write(tokens);
        }

        return unknown;
    }

    /// <summary>
    /// Checks a presented bootstrap credential: null when it joins, else why not (unknown, wrong secret, expired — the message
    /// says which and what to do, never the secret).
    /// </summary>
    public string? Refusal(string id, string secret)
    {
        var stored = Read().FirstOrDefault(t => t.Id == id);
        if (stored is null || !CryptographicOperations.FixedTimeEquals(Convert.FromHexString(stored.SecretSha256), SHA256.HashData(Encoding.UTF8.GetBytes(secret))))
        {
            return $"bootstrap token {id} is not known to this server (deleted, or mistyped): create one with `airlock token create` on the server";
        }

        var info = Info(stored);
        return info.IsExpired(timeProvider.GetUtcNow())
            ? $"bootstrap token {id} expired at {info.Expires!.Value.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}: create a new one with `airlock token create` on the server"
            : null;
    }

    private List<StoredBootstrapToken> Read()
    {
        if (!File.Exists(FilePath))
        {
            return [];
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(FilePath), TokenJson.Default.ListStoredBootstrapToken) ?? [];
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{FilePath} is not a bootstrap token list ({ex.Message}); restore it from a backup or delete it (every bootstrap token is then gone)", ex);
        }
    }

    private void Write(List<StoredBootstrapToken> tokens) =>
        AtomicFile.Write(FilePath, JsonSerializer.SerializeToUtf8Bytes(tokens, TokenJson.Default.ListStoredBootstrapToken), AtomicFile.Private);

    private static BootstrapTokenInfo Info(StoredBootstrapToken stored) => new(stored.Id, stored.Description, stored.Created, stored.Expires);

    private static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string RandomString(int length) => RandomNumberGenerator.GetString(Alphabet, length);
}
