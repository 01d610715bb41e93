using Xunit.Abstractions;
using Xunit.Sdk;

namespace Airlock.Conformance.Tests.Harness;

/// <summary>
/// One upstream check (a ginkgo <c>g.Specify</c>): its workflow, its context and its text, which become the
/// display name, and its step, which orders it within the workflow (the upstream suite is ordered: setup,
/// checks, teardown, each depending on what the previous ones left in the registry).
/// A workflow switched off through OCI_TEST_* is reported skipped, as upstream does; by default none is.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class SpecAttribute : FactAttribute
{
    public SpecAttribute(Workflow workflow, int step, string context, string specification)
    {
        Workflow = workflow;
        Step = step;
        DisplayName = $"{ConformanceSettings.WorkflowTitle(workflow)} / {context} / {specification}";
        if (!ConformanceSettings.Current.EnabledWorkflows.Contains(workflow))
        {
            Skip = "workflow switched off by the OCI_TEST_* environment variables";
        }
    }

    public Workflow Workflow { get; }

    public int Step { get; }

    /// <summary>
    /// For the teardown checks that delete manifests: their step when OCI_DELETE_MANIFEST_BEFORE_BLOBS is
    /// false, which upstream handles by declaring the same check after the blob deletions instead of before.
    /// </summary>
    public int StepWhenBlobsDeletedFirst { get; set; }
}

/// <summary>Runs a workflow's checks in <see cref="SpecAttribute.Step"/> order.</summary>
public sealed class SpecOrderer : ITestCaseOrderer
{
    public const string TypeName = "Airlock.Conformance.Tests.Harness.SpecOrderer";
    public const string AssemblyName = "Airlock.Conformance.Tests";

    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases)
        where TTestCase : ITestCase =>
        testCases.OrderBy(t => StepOf(t)).ThenBy(t => t.TestMethod.Method.Name, StringComparer.Ordinal);

    internal static int StepOf(ITestCase testCase)
    {
        var attribute = testCase.TestMethod.Method.GetCustomAttributes(typeof(SpecAttribute)).SingleOrDefault()
            ?? throw new InvalidOperationException($"{testCase.TestMethod.Method.Name} has no [Spec]");
        var step = (int)attribute.GetConstructorArguments().ElementAt(1);
        var late = attribute.GetNamedArgument<int>(nameof(SpecAttribute.StepWhenBlobsDeletedFirst));
        return late != 0 && !ConformanceSettings.Current.DeleteManifestBeforeBlobs ? late : step;
    }
}

/// <summary>Runs the workflows in the upstream order: Pull, Push, Content Discovery, Content Management.</summary>
public sealed class WorkflowOrderer : ITestCollectionOrderer
{
    public const string TypeName = "Airlock.Conformance.Tests.Harness.WorkflowOrderer";

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections)
    {
        // xunit passes only the collections that have tests to run in this (possibly filtered) run.
        var planned = testCollections.Select(c => (Collection: c, Workflow: WorkflowOf(c))).OrderBy(c => c.Workflow).ToList();
        RegistryUnderTest.PlannedWorkflows = planned.Count(c => c.Workflow is { } w && ConformanceSettings.Current.EnabledWorkflows.Contains(w));
        return planned.Select(c => c.Collection);
    }

    private static Workflow? WorkflowOf(ITestCollection collection) =>
        Enum.GetValues<Workflow>().Where(w => ConformanceSettings.WorkflowTitle(w) == collection.DisplayName).Select(w => (Workflow?)w).FirstOrDefault();
}
