using Airlock.Conformance.Tests.Harness;

// The upstream suite is one ordered sequence against one registry and one namespace: the workflows must
// run one after the other, in order, and each workflow's checks in their order.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: TestCollectionOrderer(WorkflowOrderer.TypeName, SpecOrderer.AssemblyName)]
