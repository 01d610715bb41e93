namespace Airlock.Tests.Architecture;

/// <summary>
/// The layer diagram of docs/architecture.md, enforced: data flows down, never up or sideways. Reads the library's
/// source (<c>src/Airlock</c>) with the C# compiler, so what counts is what the code names, however it names it.
/// </summary>
public sealed class LayeringTests
{
    /// <summary>
    /// Every top-level folder of <c>src/Airlock</c> and its layer: a folder may use only folders of a lower number.
    /// The CLI (<c>src/Airlock.Cli</c>, its own assembly) sits on top of all of them and only parses and prints.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, int> Layers = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        // Pure types: digests, descriptors, references, media types, manifests, platforms. No I/O.
        ["Oci"] = 0,

        // File system and stream primitives every writer shares: the atomic file write, fsync, the stream wrapper bases.
        ["IO"] = 0,

        // Names users type: "did you mean" for verbs, flags and config.yaml keys. Pure, no I/O.
        ["Configuration"] = 0,

        // Go's duration, URL and quote rules and its text/template engine, for what K3s and containerd users write.
        ["GoCompat"] = 0,

        // Kestrel as every Airlock server runs it (the registry, the node mirror; the cluster server and peers next).
        // It uses nothing of ours: the certificate it serves comes as an X509Certificate2.
        ["Hosting"] = 0,

        // The one TLS/PEM/trust module (certificates, keys, CAs) for the registry, the client, the node and the cluster.
        ["Tls"] = 1,

        // The protocol both sides of the distribution API speak: routes, error codes and bodies, headers, wire records.
        ["Distribution"] = 1,

        // The content-addressed store: the store contracts, ingest, verified readers, garbage collection, and the
        // filesystem store as one implementation (which only the registry's composition root names: StoreBoundaryTests).
        ["Content"] = 2,

        // The registry client: auth challenges, tokens, retries, resumable blobs.
        ["Remote"] = 3,

        // Images as files and the graph walk over places that hold images; reads registries through Remote.
        ["Bundles"] = 4,

        // The two programs that serve: the registry (over Content, a pull-through cache over Remote) and the node
        // (registries.yaml, containerd, the images directory that imports bundles, the node mirror). Neither uses the other.
        ["Registry"] = 5,
        ["Node"] = 5,

        // The cluster: server, join tokens, PKI; starts registries and drives nodes.
        ["Cluster"] = 6,
    };

    /// <summary>
    /// Folders inside one capability that use each other, each set a whole cycle as it stands today and why it is kept.
    /// Any other cycle, or a folder joining one of these, fails.
    /// </summary>
    internal static readonly IReadOnlyList<IReadOnlySet<string>> AllowedCycles =
    [
        // Pull-through is the registry's cache mode rather than a capability of its own: the cache fills the manifest
        // cache the manifest handler serves from and streams stored blobs with the blob handler's copy, and the
        // registry's dispatcher routes to it (as distribution's registry/proxy shares registry/storage's caches).
        new HashSet<string>(StringComparer.Ordinal) { "Registry", "Registry/PullThrough" },

        // A user's config.toml.tmpl is rendered with the renderer's own data (options, schema, registries.yaml) and may
        // include the built-in config as its base ({{ template "base" . }}), so the template needs the renderer's model
        // while the renderer picks the template: one step of rendering in two folders, as K3s keeps its template and
        // its config in pkg/agent/templates.
        new HashSet<string>(StringComparer.Ordinal) { "Node", "Node/ContainerdTemplates" },
    ];

    /// <summary>The library's source and what each folder uses, read once per test run (binding it takes seconds) for every test that checks it.</summary>
    internal static readonly Lazy<(IReadOnlyList<(string Path, string Text)> Sources, IReadOnlyList<FolderDependency> Dependencies, IReadOnlyList<string> Problems)> Library = new(() =>
    {
        var sources = SourceDependencies.ReadTree(Path.Combine(RepositoryRoot(), "src", "Airlock"));
        var (dependencies, problems) = SourceDependencies.Read(sources);
        return (sources, dependencies, problems);
    });

    [Fact]
    public void No_folder_of_the_library_reaches_up_or_sideways_and_no_new_cycle_forms()
    {
        var (sources, dependencies, problems) = Library.Value;
        var rules = new LayerRules(Layers, AllowedCycles, $"{nameof(LayeringTests)}.{nameof(Layers)}");

        var broken = problems.Concat(rules.Check(sources.Select(s => SourceDependencies.FolderOf(s.Path)), dependencies)).ToList();

        Assert.True(broken.Count == 0, string.Join(Environment.NewLine, broken));
    }

    [Fact]
    public void The_library_declares_no_global_using_of_its_own_namespaces_in_its_project_file()
    {
        // <Using Include="Airlock.X" /> would make every file see X without naming it in the source this test reads.
        var project = File.ReadAllText(Path.Combine(RepositoryRoot(), "src", "Airlock", "Airlock.csproj"));

        Assert.DoesNotContain("<Using Include=\"Airlock", project, StringComparison.Ordinal);
    }

    internal static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Airlock.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no Airlock.slnx above {AppContext.BaseDirectory}: the layering test reads the source it was built from");
    }
}
