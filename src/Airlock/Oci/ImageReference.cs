using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Airlock.Oci;

/// <summary>
/// An image reference, <c>[registry/]repository[:tag][@digest]</c>, normalised the way Docker, containerd
/// and K3s do: a first path component is a registry only when it contains <c>.</c> or <c>:</c>, is
/// <c>localhost</c>, or has upper-case letters; otherwise the registry is <c>docker.io</c>, and a single
/// component name gets <c>library/</c>. The one reference parser of the code base.
/// </summary>
public sealed partial record ImageReference
{
    public const string DockerHub = "docker.io";
    public const int MaxNameLength = 255;

    public required string Registry { get; init; }

    public required string Repository { get; init; }

    public string? Tag { get; init; }

    public Digest? Digest { get; init; }

    /// <summary>The tag, digest or (neither given) <c>latest</c> that a pull resolves.</summary>
    public string Identifier => Digest?.ToString() ?? Tag ?? "latest";

    /// <summary>The digest if present, else the tag (or <c>latest</c>).</summary>
    public string TagOrDefault => Tag ?? "latest";

    public static ImageReference Parse(string value) =>
        TryParse(value, out var reference, out var error) ? reference : throw new FormatException(error);

    public static bool TryParse([NotNullWhen(true)] string? value, [NotNullWhen(true)] out ImageReference? reference) =>
        TryParse(value, out reference, out _);

    public static bool TryParse([NotNullWhen(true)] string? value, [NotNullWhen(true)] out ImageReference? reference, out string error)
    {
        reference = null;
        if (string.IsNullOrWhiteSpace(value))
        {
            error = "image reference is empty";
            return false;
        }

        var rest = value.Trim();
        Digest? digest = null;
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            if (!Oci.Digest.TryParse(rest[(at + 1)..], out var parsed, out var digestError))
            {
                error = $"image reference \"{value}\": {digestError}";
                return false;
            }

            digest = parsed;
            rest = rest[..at];
        }

        string? tag = null;
        var lastColon = rest.LastIndexOf(':');
        if (lastColon > rest.LastIndexOf('/'))
        {
            tag = rest[(lastColon + 1)..];
            rest = rest[..lastColon];
            if (!IsValidTag(tag))
            {
                error = $"image reference \"{value}\": tag \"{tag}\" is invalid";
                return false;
            }
        }

        string registry;
        string repository;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? rest : rest[..slash];
        if (slash >= 0 && (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal)
            || first == "localhost" || !string.Equals(first, first.ToLowerInvariant(), StringComparison.Ordinal)))
        {
            registry = first;
            repository = rest[(slash + 1)..];
            if (!DomainGrammar().IsMatch(registry))
            {
                error = $"image reference \"{value}\": registry \"{registry}\" is invalid";
                return false;
            }
        }
        else
        {
            registry = DockerHub;
            repository = rest;
        }

        if (registry is "index.docker.io" or "registry-1.docker.io")
        {
            registry = DockerHub;
        }

        if (registry == DockerHub && !repository.Contains('/', StringComparison.Ordinal))
        {
            repository = "library/" + repository;
        }

        if (!IsValidRepository(repository))
        {
            error = $"image reference \"{value}\": repository \"{repository}\" is invalid (lower-case letters, digits and separators . _ __ - only)";
            return false;
        }

        if (registry.Length + 1 + repository.Length > MaxNameLength)
        {
            error = $"image reference \"{value}\": name is longer than {MaxNameLength} characters";
            return false;
        }

        reference = new ImageReference { Registry = registry, Repository = repository, Tag = tag, Digest = digest };
        error = string.Empty;
        return true;
    }

    /// <summary>A repository path as the distribution spec allows it in <c>/v2/&lt;name&gt;/</c>.</summary>
    public static bool IsValidRepository(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= MaxNameLength && RepositoryGrammar().IsMatch(name);

    /// <summary>A tag: <c>[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}</c>.</summary>
    public static bool IsValidTag(string? tag) => !string.IsNullOrEmpty(tag) && TagGrammar().IsMatch(tag);

    /// <summary>The same reference with another registry and/or repository (for load and rewrite).</summary>
    public ImageReference WithName(string registry, string repository) => this with { Registry = registry, Repository = repository };

    /// <summary><c>registry/repository</c>, the name containerd stores images under.</summary>
    public string Name => $"{Registry}/{Repository}";

    public override string ToString()
    {
        var text = Name;
        if (Tag is not null)
        {
            text += ":" + Tag;
        }

        if (Digest is { } digest)
        {
            text += "@" + digest;
        }

        return text;
    }

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*\z", RegexOptions.CultureInvariant)]
    private static partial Regex RepositoryGrammar();

    [GeneratedRegex(@"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\z", RegexOptions.CultureInvariant)]
    private static partial Regex TagGrammar();

    [GeneratedRegex(@"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?\z", RegexOptions.CultureInvariant)]
    private static partial Regex DomainGrammar();
}
