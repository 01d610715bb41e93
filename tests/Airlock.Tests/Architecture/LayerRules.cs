namespace Airlock.Tests.Architecture;

/// <summary>
/// The rules the library's folders keep: a top-level folder uses only folders of lower layers (never one above, never
/// one beside it), every top-level folder has a place in the table, and folders inside one top-level folder form no
/// cycle except the ones allowed by name.
/// </summary>
/// <param name="Layers">Every top-level folder and its layer; a lower number is lower in the stack.</param>
/// <param name="AllowedCycles">Sets of folders allowed to use each other (each a whole cycle, exactly as it stands).</param>
/// <param name="TableName">Where the table lives, named in the message for an unknown folder.</param>
internal sealed record LayerRules(IReadOnlyDictionary<string, int> Layers, IReadOnlyList<IReadOnlySet<string>> AllowedCycles, string TableName)
{
    /// <summary>Every broken rule, each naming the folders, the file and line, and the name that breaks it; empty when all hold.</summary>
    public IReadOnlyList<string> Check(IEnumerable<string> folders, IReadOnlyList<FolderDependency> dependencies)
    {
        var problems = new List<string>();
        foreach (var top in folders.Select(TopOf).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            if (!Layers.ContainsKey(top))
            {
                problems.Add($"folder {(top.Length == 0 ? "src/Airlock itself (a file outside every folder)" : top)} has no layer: place it in {TableName} " +
                    "(a folder per capability, above everything it uses and below everything that uses it)");
            }
        }

        foreach (var dependency in dependencies)
        {
            var (from, to) = (TopOf(dependency.From), TopOf(dependency.To));
            if (from == to || !Layers.TryGetValue(from, out var fromLayer) || !Layers.TryGetValue(to, out var toLayer) || toLayer < fromLayer)
            {
                continue;
            }

            var direction = toLayer > fromLayer ? "reaches up to" : "reaches sideways to";
            problems.Add($"{dependency.From} (layer {fromLayer}) {direction} {dependency.To} (layer {toLayer}) at {dependency.Where}: {dependency.What}");
        }

        problems.AddRange(CheckCycles(dependencies));
        return problems;
    }

    private IEnumerable<string> CheckCycles(IReadOnlyList<FolderDependency> dependencies)
    {
        var inside = dependencies.Where(d => TopOf(d.From) == TopOf(d.To)).ToList();
        var edges = inside.GroupBy(d => d.From, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(d => d.To).Distinct(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);
        var cycles = StronglyConnected(edges).Where(component => component.Count > 1).ToList();
        foreach (var cycle in cycles)
        {
            if (AllowedCycles.Any(allowed => allowed.SetEquals(cycle)))
            {
                continue;
            }

            var evidence = inside.Where(d => cycle.Contains(d.From) && cycle.Contains(d.To))
                .GroupBy(d => (d.From, d.To))
                .Select(g => $"{g.Key.From} -> {g.Key.To} at {g.First().Where}: " +
                    string.Join(", ", g.Select(d => d.What[..d.What.IndexOf(" (", StringComparison.Ordinal)]).Distinct(StringComparer.Ordinal).Take(8)));
            yield return $"folders {string.Join(", ", cycle.Order(StringComparer.Ordinal))} use each other (a cycle not in the allowed list): " +
                string.Join("; ", evidence);
        }

        foreach (var allowed in AllowedCycles.Where(allowed => !cycles.Any(cycle => allowed.SetEquals(cycle))))
        {
            yield return $"the allowed cycle {string.Join(", ", allowed.Order(StringComparer.Ordinal))} is no longer one: remove it from the allowed list";
        }
    }

    /// <summary>The top-level folder of a folder path (<c>Registry</c> of <c>Registry/PullThrough</c>).</summary>
    public static string TopOf(string folder) => folder.Split('/')[0];

    /// <summary>Tarjan's strongly connected components: each cycle of folders, however long, as one set.</summary>
    private static List<HashSet<string>> StronglyConnected(Dictionary<string, List<string>> edges)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var low = new Dictionary<string, int>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        var components = new List<HashSet<string>>();
        var nodes = edges.Keys.Concat(edges.Values.SelectMany(v => v)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

        void Visit(string node)
        {
            index[node] = low[node] = index.Count;
            stack.Push(node);
            onStack.Add(node);
            foreach (var next in edges.GetValueOrDefault(node) ?? [])
            {
                if (!index.ContainsKey(next))
                {
                    Visit(next);
                    low[node] = Math.Min(low[node], low[next]);
                }
                else if (onStack.Contains(next))
                {
                    low[node] = Math.Min(low[node], index[next]);
                }
            }

            if (low[node] == index[node])
            {
                var component = new HashSet<string>(StringComparer.Ordinal);
                string member;
                do
                {
                    member = stack.Pop();
                    onStack.Remove(member);
                    component.Add(member);
                }
                while (member != node);
                components.Add(component);
            }
        }

        foreach (var node in nodes.Where(node => !index.ContainsKey(node)))
        {
            Visit(node);
        }

        return components;
    }
}
