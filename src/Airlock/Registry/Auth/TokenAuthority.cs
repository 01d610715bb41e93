using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Airlock.Tls;

namespace Airlock.Registry.Auth;

/// <summary>Settings of Docker/OCI token authentication.</summary>
public sealed record TokenAuthOptions
{
    /// <summary>
    /// The absolute URL of the token endpoint clients are sent to (<c>&lt;external URL&gt;/token</c>).
    /// Null: derived per request from its scheme and Host header plus <see cref="TokenPath"/>, right
    /// when clients reach the registry directly rather than through a proxy that rewrites the host.
    /// </summary>
    public Uri? Realm { get; init; }

    /// <summary>Path of the token endpoint when <see cref="Realm"/> is derived from the request.</summary>
    public string TokenPath { get; init; } = "/token";

    /// <summary>The <c>service</c> in challenges and the tokens' audience.</summary>
    public string Service { get; init; } = "airlock";

    /// <summary>The tokens' <c>iss</c>.</summary>
    public string Issuer { get; init; } = "airlock";

    /// <summary>How long a token is valid; clients fetch a new one when a request gets 401.</summary>
    public TimeSpan Lifetime { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Tolerated clock difference when checking <c>exp</c> and <c>nbf</c>.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>A signed token and what the token endpoint reports about it.</summary>
public sealed record IssuedToken(string Token, DateTimeOffset IssuedAt, TimeSpan ExpiresIn, IReadOnlyList<AccessRequest> Access);

/// <summary>The claims of a token that passed validation.</summary>
/// <param name="Subject">The user; null for an anonymous token (empty <c>sub</c>).</param>
public sealed record TokenClaims(string? Subject, DateTimeOffset NotBefore, DateTimeOffset ExpiresAt, IReadOnlyList<AccessRequest> Access)
{
    /// <summary>True when the token grants every action of <paramref name="request"/>.</summary>
    public bool Covers(AccessRequest request) => Access.Any(a =>
        a.Type == request.Type && a.Name == request.Name && request.Actions.All(needed => a.Actions.Contains(needed) || a.Actions.Contains("*")));
}

/// <summary>
/// Issues and validates the registry's bearer tokens: JWTs signed ES256 with an ECDSA P-256 key kept
/// in a PEM file (created on first use, mode 0600, reused across restarts so tokens survive a restart).
/// Claims follow distribution's token auth: <c>iss</c>, <c>sub</c>, <c>aud</c> (= service), <c>exp</c>,
/// <c>nbf</c>, <c>iat</c>, <c>jti</c> and <c>access</c> = [{type, name, actions}]. Written with
/// System.Text.Json and System.Security.Cryptography: a JWT is three base64url parts, and checking
/// exactly one algorithm against one key is simpler and safer than configuring a general JWT library.
/// </summary>
public sealed class TokenAuthority : IDisposable
{
    private readonly ECDsa _key;
    private const int MaxVerifiedTokens = 10_000;

    private readonly string _encodedHeader;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TokenClaims> _verified = new(StringComparer.Ordinal);
    private readonly TimeProvider _timeProvider;

    private TokenAuthority(ECDsa key, TokenAuthOptions options, TimeProvider timeProvider)
    {
        _key = key;
        Options = options;
        _timeProvider = timeProvider;
        var keyId = Base64Url.EncodeToString(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));
        // Written field by field, as the payload is: reflection-based serialization is not available in the Native AOT build.
        var header = new ArrayBufferWriter<byte>(128);
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteString("typ", "JWT");
            json.WriteString("alg", "ES256");
            json.WriteString("kid", keyId);
            json.WriteEndObject();
        }

        _encodedHeader = Base64Url.EncodeToString(header.WrittenSpan);
    }

    public TokenAuthOptions Options { get; }

    /// <summary>
    /// Uses the signing key at <paramref name="keyPath"/> (e.g. <c>&lt;data-dir&gt;/registry/token/key.pem</c>),
    /// creating it when absent. A key file that exists but is not an ECDSA P-256 private key is an error,
    /// never silently replaced.
    /// </summary>
    public static TokenAuthority LoadOrCreate(string keyPath, TokenAuthOptions options, TimeProvider timeProvider)
    {
        ECDsa? key = null;
        try
        {
            if (File.Exists(keyPath))
            {
                key = PemFiles.ReadEcdsaKey(keyPath);
                if (key.ExportParameters(includePrivateParameters: false).Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
                {
                    throw new AuthConfigurationException([$"{keyPath}: token signing key must be ECDSA P-256 (ES256), found another curve"]);
                }
            }
            else
            {
                key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                PemFiles.WriteKey(key, keyPath);
            }
        }
        catch (Exception e) when (e is TlsMaterialException or CryptographicException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            key?.Dispose();
            var reason = e.Message.StartsWith(keyPath + ": ", StringComparison.Ordinal) ? e.Message[(keyPath.Length + 2)..] : e.Message;
            throw new AuthConfigurationException($"{keyPath}: cannot use token signing key: {reason}", e);
        }
        catch
        {
            key?.Dispose();
            throw;
        }

        return new TokenAuthority(key, options, timeProvider);
    }

    /// <summary>Signs a token for <paramref name="subject"/> (null = anonymous) granting <paramref name="access"/>.</summary>
    public IssuedToken Issue(string? subject, IReadOnlyList<AccessRequest> access)
    {
        var now = _timeProvider.GetUtcNow();
        var issuedAt = now.ToUnixTimeSeconds();
        var payload = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(payload))
        {
            json.WriteStartObject();
            json.WriteString("iss", Options.Issuer);
            json.WriteString("sub", subject ?? "");
            json.WriteString("aud", Options.Service);
            json.WriteNumber("exp", issuedAt + (long)Options.Lifetime.TotalSeconds);
            json.WriteNumber("nbf", issuedAt);
            json.WriteNumber("iat", issuedAt);
            json.WriteString("jti", Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(16)));
            json.WriteStartArray("access");
            foreach (var item in access)
            {
                json.WriteStartObject();
                json.WriteString("type", item.Type);
                json.WriteString("name", item.Name);
                json.WriteStartArray("actions");
                foreach (var action in item.Actions)
                {
                    json.WriteStringValue(action);
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        var signingInput = $"{_encodedHeader}.{Base64Url.EncodeToString(payload.WrittenSpan)}";
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return new IssuedToken($"{signingInput}.{Base64Url.EncodeToString(signature)}", now, Options.Lifetime, access);
    }

    /// <summary>
    /// Checks signature (ES256 with this authority's key only), audience, issuer and validity period
    /// (with <see cref="TokenAuthOptions.ClockSkew"/>). On failure <paramref name="error"/> says why.
    /// </summary>
    public bool TryValidate(string token, out TokenClaims claims, out string error)
    {
        // A pull sends the same token dozens of times; the signature check is the expensive part and
        // its answer cannot change, so verified claims are remembered (the time window is checked anew).
        if (!_verified.TryGetValue(token, out claims!))
        {
            if (!TryVerify(token, out claims, out error))
            {
                return false;
            }

            if (_verified.Count >= MaxVerifiedTokens)
            {
                _verified.Clear();
            }

            _verified[token] = claims;
        }

        var now = _timeProvider.GetUtcNow();
        if (now > claims.ExpiresAt + Options.ClockSkew)
        {
            error = "token has expired";
            return false;
        }

        if (now + Options.ClockSkew < claims.NotBefore)
        {
            error = "token is not valid yet";
            return false;
        }

        error = "";
        return true;
    }

    private bool TryVerify(string token, out TokenClaims claims, out string error)
    {
        claims = null!;
        var parts = token.Split('.');
        if (parts.Length != 3)
        {
            error = "malformed token";
            return false;
        }

        try
        {
            using (var header = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[0])))
            {
                if (header.RootElement.ValueKind != JsonValueKind.Object
                    || !header.RootElement.TryGetProperty("alg", out var alg) || alg.ValueKind != JsonValueKind.String || alg.GetString() != "ES256")
                {
                    error = "token is not signed with ES256";
                    return false;
                }
            }

            var signature = Base64Url.DecodeFromChars(parts[2]);
            var signed = Encoding.ASCII.GetBytes(token, 0, parts[0].Length + 1 + parts[1].Length);
            if (!_key.VerifyData(signed, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
            {
                error = "token signature is invalid";
                return false;
            }

            using var payload = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
            return TryReadClaims(payload.RootElement, out claims, out error);
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException or KeyNotFoundException)
        {
            error = "malformed token";
            return false;
        }
    }

    public void Dispose() => _key.Dispose();

    private bool TryReadClaims(JsonElement payload, out TokenClaims claims, out string error)
    {
        claims = null!;
        if (payload.GetProperty("iss").GetString() != Options.Issuer)
        {
            error = "token has another issuer";
            return false;
        }

        var audience = payload.GetProperty("aud");
        var audiences = audience.ValueKind == JsonValueKind.Array ? audience.EnumerateArray().Select(a => a.GetString()) : [audience.GetString()];
        if (!audiences.Contains(Options.Service))
        {
            error = "token is for another service";
            return false;
        }

        var expires = DateTimeOffset.FromUnixTimeSeconds(payload.GetProperty("exp").GetInt64());
        var notBefore = payload.TryGetProperty("nbf", out var nbf) ? DateTimeOffset.FromUnixTimeSeconds(nbf.GetInt64()) : DateTimeOffset.MinValue;
        var access = new List<AccessRequest>();
        if (payload.TryGetProperty("access", out var items))
        {
            foreach (var item in items.EnumerateArray())
            {
                access.Add(new AccessRequest(
                    item.GetProperty("type").GetString()!,
                    item.GetProperty("name").GetString()!,
                    [.. item.GetProperty("actions").EnumerateArray().Select(a => a.GetString()!)]));
            }
        }

        var subject = payload.TryGetProperty("sub", out var sub) ? sub.GetString() : null;
        claims = new TokenClaims(string.IsNullOrEmpty(subject) ? null : subject, notBefore, expires, access);
        error = "";
        return true;
    }
}
