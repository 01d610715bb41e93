namespace Airlock.Conformance.Tests.Harness;

/// <summary>The four workflow categories of the OCI conformance suite, in the order it runs them.</summary>
public enum Workflow
{
    Pull = 1,
    Push = 2,
    ContentDiscovery = 3,
    ContentManagement = 4,
}

/// <summary>
/// The official suite's environment variables (OCI_*), read once per run so that the same tests can be
/// pointed at any registry. Without OCI_ROOT_URL the suite starts its own target (see
/// <see cref="RegistryUnderTest"/>) and every workflow runs.
/// </summary>
internal sealed record ConformanceSettings
{
    public static readonly ConformanceSettings Current = FromEnvironment(Environment.GetEnvironmentVariable);

    public Uri? RootUrl { get; init; }

    public required string Namespace { get; init; }

    public required string CrossmountNamespace { get; init; }

    public string? Username { get; init; }

    public string? Password { get; init; }

    public bool Debug { get; init; }

    public required IReadOnlySet<Workflow> EnabledWorkflows { get; init; }

    /// <summary>OCI_DELETE_MANIFEST_BEFORE_BLOBS: teardown order; upstream defaults to true.</summary>
    public bool DeleteManifestBeforeBlobs { get; init; } = true;

    /// <summary>OCI_AUTOMATIC_CROSSMOUNT when set; null lets the target decide.</summary>
    public bool? AutomaticCrossmount { get; init; }

    public static string WorkflowTitle(Workflow workflow) => workflow switch
    {
        Workflow.Pull => "Pull",
        Workflow.Push => "Push",
        Workflow.ContentDiscovery => "Content Discovery",
        Workflow.ContentManagement => "Content Management",
        _ => throw new ArgumentOutOfRangeException(nameof(workflow)),
    };

    internal static ConformanceSettings FromEnvironment(Func<string, string?> env)
    {
        var root = env("OCI_ROOT_URL");
        var switches = new Dictionary<string, Workflow>(StringComparer.Ordinal)
        {
            ["OCI_TEST_PULL"] = Workflow.Pull,
            ["OCI_TEST_PUSH"] = Workflow.Push,
            ["OCI_TEST_CONTENT_DISCOVERY"] = Workflow.ContentDiscovery,
            ["OCI_TEST_CONTENT_MANAGEMENT"] = Workflow.ContentManagement,
        };

        // Upstream runs only the workflows switched on; a run with none of the switches set runs them all
        // here, because the product requirement is the full suite with nothing skipped.
        var anySwitch = switches.Keys.Any(k => env(k) is not null);
        var enabled = anySwitch
            ? switches.Where(s => ParseBool(env(s.Key)) == true).Select(s => s.Value).ToHashSet()
            : Enum.GetValues<Workflow>().ToHashSet();

        var crossmount = env("OCI_CROSSMOUNT_NAMESPACE");
        return new ConformanceSettings
        {
            RootUrl = string.IsNullOrEmpty(root) ? null : new Uri(root.TrimEnd('/'), UriKind.Absolute),
            Namespace = NonEmpty(env("OCI_NAMESPACE")) ?? "conformance/distribution-spec",
            CrossmountNamespace = NonEmpty(crossmount) ?? $"conformance-{Guid.NewGuid()}",
            Username = NonEmpty(env("OCI_USERNAME")),
            Password = env("OCI_PASSWORD"),
            Debug = ParseBool(env("OCI_DEBUG")) == true,
            EnabledWorkflows = enabled,
            DeleteManifestBeforeBlobs = ParseBool(env("OCI_DELETE_MANIFEST_BEFORE_BLOBS")) ?? true,
            AutomaticCrossmount = ParseBool(env("OCI_AUTOMATIC_CROSSMOUNT")),
        };
    }

    /// <summary>Go's strconv.ParseBool, which the suite uses for every switch.</summary>
    internal static bool? ParseBool(string? value) => value switch
    {
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => null,
    };

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
