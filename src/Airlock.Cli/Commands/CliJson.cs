using System.Text.Json;
using System.Text.Json.Serialization;
using Airlock.Node.Preflight;

namespace Airlock.Cli.Commands;

/// <summary>
/// The shapes of the CLI's <c>--output json|yaml</c> documents, source-generated so that printing them needs no
/// reflection (the published binary is Native AOT). Keys are camelCase; absent (null) values are left out.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, Converters = [typeof(CheckStatusJsonConverter)])]
[JsonSerializable(typeof(IReadOnlyList<string>))]
[JsonSerializable(typeof(IReadOnlyList<CliInventoryRow>))]
[JsonSerializable(typeof(IReadOnlyList<CheckResult>))]
[JsonSerializable(typeof(GarbageCollectionReport))]
[JsonSerializable(typeof(RegistriesValidationReport))]
internal sealed partial class CliJson : JsonSerializerContext
{
}

/// <summary><c>pass</c>, <c>warn</c>, <c>fail</c>.</summary>
internal sealed class CheckStatusJsonConverter() : JsonStringEnumConverter<CheckStatus>(JsonNamingPolicy.CamelCase);

/// <summary>A row of <c>images list --archive</c>; an image without a name prints <c>name: null</c>.</summary>
internal sealed record CliInventoryRow(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Name, string Digest, string MediaType, IReadOnlyList<string> Platforms, long Size);

/// <summary>What <c>registry gc</c> removed (or would remove, with <see cref="DryRun"/>).</summary>
internal sealed record GarbageCollectionReport(
    bool DryRun, int MarkedBlobs, IReadOnlyList<string> Blobs, long Bytes, IReadOnlyList<string> Links, IReadOnlyList<string> Uploads)
{
    /// <summary>Repositories left empty, removed with their last links.</summary>
    public IReadOnlyList<string> Repositories { get; init; } = [];
}

/// <summary>The problems <c>registries validate</c> found in <see cref="File"/>.</summary>
internal sealed record RegistriesValidationReport(string File, IReadOnlyList<RegistriesValidationProblem> Problems);

/// <summary>One problem: its file and line, <c>warning</c>, <c>error</c> or <c>fatal</c>, and what is wrong.</summary>
internal sealed record RegistriesValidationProblem(string File, int Line, string Severity, string Message);
