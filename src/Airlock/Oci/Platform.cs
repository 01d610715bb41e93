using System.Text.Json.Serialization;
using CpuArchitecture = System.Runtime.InteropServices.Architecture;
using RuntimeInformation = System.Runtime.InteropServices.RuntimeInformation;

namespace Airlock.Oci;

/// <summary>The platform an image runs on, as in an index's <c>platform</c> field.</summary>
public sealed record Platform
{
    [JsonPropertyName("architecture")]
    public required string Architecture { get; init; }

    [JsonPropertyName("os")]
    public required string Os { get; init; }

    [JsonPropertyName("os.version")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? OsVersion { get; init; }

    [JsonPropertyName("os.features")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? OsFeatures { get; init; }

    [JsonPropertyName("variant")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Variant { get; init; }

    /// <summary>This machine in OCI terms (GOARCH names): the image picked from a multi-arch index by default.</summary>
    public static Platform Host { get; } = new()
    {
        Os = "linux",
        Architecture = RuntimeInformation.OSArchitecture switch
        {
            CpuArchitecture.X64 => "amd64",
            CpuArchitecture.Arm64 => "arm64",
            CpuArchitecture.Arm => "arm",
            CpuArchitecture.X86 => "386",
            CpuArchitecture.Ppc64le => "ppc64le",
            CpuArchitecture.S390x => "s390x",
            CpuArchitecture.RiscV64 => "riscv64",
            CpuArchitecture.LoongArch64 => "loong64",
            var other => other.ToString().ToLowerInvariant(),
        },
    };

    /// <summary>Parses <c>os/arch[/variant]</c> as given to <c>--platform</c>.</summary>
    public static Platform Parse(string value)
    {
        var parts = value.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(string.IsNullOrWhiteSpace))
        {
            throw new FormatException($"platform \"{value}\" is not of the form os/arch[/variant]");
        }

        return new Platform { Os = parts[0], Architecture = parts[1], Variant = parts.Length == 3 ? parts[2] : null };
    }

    /// <summary>
    /// Whether an image for <paramref name="candidate"/> satisfies a request for this platform; a request
    /// without variant accepts any variant, as containerd's platform matcher does for arm64.
    /// </summary>
    public bool Matches(Platform? candidate) =>
        candidate is not null
        && string.Equals(Os, candidate.Os, StringComparison.Ordinal)
        && string.Equals(Architecture, candidate.Architecture, StringComparison.Ordinal)
        && (Variant is null || string.Equals(Variant, candidate.Variant, StringComparison.Ordinal));

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}
