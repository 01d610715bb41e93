namespace Airlock.Tests.Architecture;

/// <summary>The layering check itself, on planted sources: each way of reaching up or sideways is caught.</summary>
public sealed class LayerRulesTests
{
    private static readonly IReadOnlyDictionary<string, int> Layers = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["Oci"] = 0,
        ["Content"] = 2,
        ["Registry"] = 5,
        ["Node"] = 5,
    };

    private const string Digest = "namespace Airlock.Oci;\npublic sealed record Digest(string Value);\n";
    private const string Store = "namespace Airlock.Content;\npublic interface IBlobStore { Airlock.Oci.Digest? Last { get; } }\n";
    private const string Server = "namespace Airlock.Registry;\npublic sealed class RegistryServer { public static RegistryServer Start() => new(); }\n";
    private const string Agent = "namespace Airlock.Node;\npublic sealed class NodeAgent { }\n";

    private static IReadOnlyList<string> Check(IReadOnlyList<IReadOnlySet<string>>? allowed, params (string Path, string Text)[] planted)
    {
        (string, string)[] sources = [("Oci/Digest.cs", Digest), ("Content/IBlobStore.cs", Store), ("Registry/RegistryServer.cs", Server), ("Node/NodeAgent.cs", Agent), .. planted];
        var (dependencies, problems) = SourceDependencies.Read(sources);
        var rules = new LayerRules(Layers, allowed ?? [], "LayeringTests.Layers");
        return [.. problems, .. rules.Check(sources.Select(s => SourceDependencies.FolderOf(s.Item1)), dependencies)];
    }

    [Fact]
    public void The_planted_library_without_violations_passes() => Assert.Empty(Check(null));

    [Fact]
    public void A_using_of_a_higher_layer_is_reaching_up()
    {
        var problems = Check(null, ("Oci/Bad.cs", "using Airlock.Content;\nnamespace Airlock.Oci;\ninternal static class Bad { public static IBlobStore? Store; }\n"));

        Assert.Equal(
            [
                "Oci (layer 0) reaches up to Content (layer 2) at Oci/Bad.cs:1: Airlock.Content (Airlock.Content)",
                "Oci (layer 0) reaches up to Content (layer 2) at Oci/Bad.cs:3: IBlobStore (Airlock.Content.IBlobStore)",
            ],
            problems);
    }

    [Fact]
    public void A_fully_qualified_name_of_a_folder_on_the_same_layer_is_reaching_sideways()
    {
        var problems = Check(null, ("Registry/Bad.cs", "namespace Airlock.Registry;\ninternal static class Bad { public static object Agent = new Airlock.Node.NodeAgent(); }\n"));

        Assert.NotEmpty(problems);
        Assert.All(problems, p => Assert.StartsWith("Registry (layer 5) reaches sideways to Node (layer 5) at Registry/Bad.cs:2", p, StringComparison.Ordinal));
    }

    [Fact]
    public void A_name_qualified_from_the_shared_parent_namespace_is_caught()
    {
        // Inside namespace Airlock.Node, "Registry." means Airlock.Registry without a using or the full name.
        var problems = Check(null, ("Node/Bad.cs", "namespace Airlock.Node;\ninternal static class Bad { public static object Server = Registry.RegistryServer.Start(); }\n"));

        Assert.Contains(problems, p => p.StartsWith("Node (layer 5) reaches sideways to Registry (layer 5) at Node/Bad.cs:2: Registry.RegistryServer", StringComparison.Ordinal));
    }

    [Fact]
    public void A_global_using_is_caught_where_it_is_declared_and_where_it_is_used()
    {
        var problems = Check(
            null,
            ("Oci/Usings.cs", "global using Airlock.Registry;\n"),
            ("Content/Bad.cs", "namespace Airlock.Content;\ninternal static class Bad { public static object Server = RegistryServer.Start(); }\n"));

        Assert.Contains(problems, p => p.StartsWith("Oci (layer 0) reaches up to Registry (layer 5) at Oci/Usings.cs:1", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Content (layer 2) reaches up to Registry (layer 5) at Content/Bad.cs:2", StringComparison.Ordinal));
    }

    [Fact]
    public void Names_in_comments_and_strings_are_not_dependencies()
    {
        Assert.Empty(Check(null, ("Oci/Text.cs", "namespace Airlock.Oci;\n// uses Airlock.Registry.RegistryServer\ninternal static class Text { public const string Name = \"Airlock.Registry.RegistryServer\"; }\n")));
    }

    [Fact]
    public void A_folder_missing_from_the_table_fails_naming_where_to_place_it()
    {
        var problem = Assert.Single(Check(null, ("IO/AtomicFile.cs", "namespace Airlock.IO;\npublic static class AtomicFile { }\n")));

        Assert.Equal("folder IO has no layer: place it in LayeringTests.Layers (a folder per capability, above everything it uses and below everything that uses it)", problem);
    }

    [Fact]
    public void A_namespace_that_is_not_its_folder_is_reported()
    {
        var problem = Assert.Single(Check(null, ("Content/Wrong.cs", "namespace Airlock.Oci;\ninternal static class Wrong { }\n")));

        Assert.Equal("Content/Wrong.cs: namespace Airlock.Oci is not its folder (namespace = folder: Airlock.Content)", problem);
    }

    private static readonly (string, string)[] Cycle =
    [
        // The parent names the child with a using; the child names the parent's type through its enclosing namespace.
        ("Registry/Handler.cs", "using Airlock.Registry.Cache;\nnamespace Airlock.Registry;\ninternal sealed class Handler { public ProxyCache? Cache; }\n"),
        ("Registry/Cache/ProxyCache.cs", "namespace Airlock.Registry.Cache;\ninternal sealed class ProxyCache { public Handler? Owner; }\n"),
    ];

    [Fact]
    public void A_cycle_between_folders_of_one_capability_fails_unless_allowed()
    {
        var problem = Assert.Single(Check(null, Cycle));

        Assert.StartsWith("folders Registry, Registry/Cache use each other (a cycle not in the allowed list):", problem, StringComparison.Ordinal);
        Assert.Contains("Registry/Cache -> Registry at Registry/Cache/ProxyCache.cs:2: Handler", problem, StringComparison.Ordinal);
        Assert.Empty(Check([new HashSet<string>(StringComparer.Ordinal) { "Registry", "Registry/Cache" }], Cycle));
    }

    [Fact]
    public void A_folder_joining_an_allowed_cycle_fails()
    {
        var allowed = new HashSet<string>(StringComparer.Ordinal) { "Registry", "Registry/Cache" };
        var problems = Check(
            [allowed],
            [.. Cycle, ("Registry/Auth/Gate.cs", "namespace Airlock.Registry.Auth;\ninternal sealed class Gate { public Cache.ProxyCache? Cache; }\n"),
             ("Registry/Cache/Guard.cs", "using Airlock.Registry.Auth;\nnamespace Airlock.Registry.Cache;\ninternal sealed class Guard { public Gate? Gate; }\n")]);

        Assert.Contains(problems, p => p.StartsWith("folders Registry/Auth, Registry/Cache use each other", StringComparison.Ordinal) || p.StartsWith("folders Registry, Registry/Auth, Registry/Cache use each other", StringComparison.Ordinal));
    }

    [Fact]
    public void An_allowed_cycle_that_was_broken_must_leave_the_list()
    {
        var problem = Assert.Single(Check([new HashSet<string>(StringComparer.Ordinal) { "Node", "Node/Mirror" }]));

        Assert.Equal("the allowed cycle Node, Node/Mirror is no longer one: remove it from the allowed list", problem);
    }
}
