using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Airlock.Oci;

/// <summary>
/// A content digest (<c>algorithm:encoded</c>) as the OCI image spec defines it. Only sha256 and
/// sha512 are registered algorithms; any other well-formed algorithm parses but is not
/// <see cref="IsSupported"/>, so callers can answer "unsupported" rather than "invalid".
/// </summary>
public readonly partial record struct Digest
{
    public const string Sha256Algorithm = "sha256";
    public const string Sha512Algorithm = "sha512";

    private Digest(string algorithm, string encoded)
    {
        Algorithm = algorithm;
        Encoded = encoded;
    }

    public string Algorithm { get; }

    public string Encoded { get; }

    public bool IsSupported => Algorithm is Sha256Algorithm or Sha512Algorithm;

    public static Digest Parse(string value) =>
        TryParse(value, out var digest, out var error) ? digest : throw new FormatException(error);

    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest) => TryParse(value, out digest, out _);

    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest, out string error)
    {
        digest = default;
        if (string.IsNullOrEmpty(value))
        {
            error = "digest is empty";
            return false;
        }

        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == value.Length - 1)
        {
            error = $"digest \"{value}\" is not of the form algorithm:encoded";
            return false;
        }

        var algorithm = value[..colon];
        var encoded = value[(colon + 1)..];
        if (!AlgorithmGrammar().IsMatch(algorithm) || !EncodedGrammar().IsMatch(encoded))
        {
            error = $"digest \"{value}\" is malformed";
            return false;
        }

        var expectedLength = algorithm switch
        {
            Sha256Algorithm => 64,
            Sha512Algorithm => 128,
            _ => -1,
        };
        if (expectedLength > 0 && (encoded.Length != expectedLength || !LowerHex().IsMatch(encoded)))
        {
            error = $"digest \"{value}\" must have {expectedLength} lowercase hex characters for {algorithm}";
            return false;
        }

        digest = new Digest(algorithm, encoded);
        error = string.Empty;
        return true;
    }

    /// <summary>The sha256 digest of bytes already in memory (manifests, configs; never whole blobs).</summary>
    public static Digest Sha256(ReadOnlySpan<byte> content) =>
        new(Sha256Algorithm, Convert.ToHexStringLower(SHA256.HashData(content)));

    /// <summary>Builds a digest from a finished hash of the given algorithm.</summary>
    public static Digest FromHash(string algorithm, ReadOnlySpan<byte> hash) =>
        new(algorithm, Convert.ToHexStringLower(hash));

    /// <summary>An incremental hash for this digest's algorithm, to verify content while it streams.</summary>
    public IncrementalHash CreateHash() => CreateHash(Algorithm);

    public static IncrementalHash CreateHash(string algorithm) => algorithm switch
    {
        Sha256Algorithm => IncrementalHash.CreateHash(HashAlgorithmName.SHA256),
        Sha512Algorithm => IncrementalHash.CreateHash(HashAlgorithmName.SHA512),
        _ => throw new NotSupportedException($"digest algorithm \"{algorithm}\" is not supported"),
    };

    public override string ToString() => Algorithm is null ? string.Empty : $"{Algorithm}:{Encoded}";

    [GeneratedRegex(@"^[a-z0-9]+(?:[+._-][a-z0-9]+)*\z", RegexOptions.CultureInvariant)]
    private static partial Regex AlgorithmGrammar();

    [GeneratedRegex(@"^[a-zA-Z0-9=_-]+\z", RegexOptions.CultureInvariant)]
    private static partial Regex EncodedGrammar();

    [GeneratedRegex(@"^[a-f0-9]+\z", RegexOptions.CultureInvariant)]
    private static partial Regex LowerHex();
}
