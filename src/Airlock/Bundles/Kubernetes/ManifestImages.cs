using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Airlock.Bundles.Kubernetes;

/// <summary>
/// The container images Kubernetes manifests use, for feeding <c>images save</c> before crossing the gap:
/// every container, init container and ephemeral container of Pods and of the pod templates of Deployments,
/// StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs, including inside
/// <c>List</c> kinds; multi-document YAML and JSON alike.
/// </summary>
public static class ManifestImages
{
    private static readonly string[] ContainerLists = ["containers", "initContainers", "ephemeralContainers"];

    /// <summary>Images named in the files (directories: every *.yaml, *.yml, *.json below; <c>-</c>: <paramref name="stdin"/>), deduplicated and sorted.</summary>
    public static async Task<IReadOnlyList<string>> FromPathsAsync(IReadOnlyList<string> paths, TextReader? stdin, CancellationToken cancellationToken)
    {
        var images = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var path in paths)
        {
            if (path == "-")
            {
                images.UnionWith(FromYaml(await (stdin ?? Console.In).ReadToEndAsync(cancellationToken).ConfigureAwait(false), "<stdin>"));
                continue;
            }

            IEnumerable<string> files = Directory.Exists(path)
                ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".yaml" or ".yml" or ".json")
                    .Order(StringComparer.Ordinal).ToList()
                : File.Exists(path) ? new[] { path } : throw new FileNotFoundException($"{path} does not exist", path);
            foreach (var file in files)
            {
                images.UnionWith(FromYaml(await File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false), file));
            }
        }

        return [.. images];
    }

    /// <summary>Images named in one YAML or JSON text (any number of documents).</summary>
    public static IEnumerable<string> FromYaml(string text, string source)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            throw new FormatException($"{source}:{ex.Start.Line}:{ex.Start.Column}: {ex.Message}", ex);
        }

        return stream.Documents.SelectMany(d => FromObject(d.RootNode)).ToList();
    }

    private static IEnumerable<string> FromObject(YamlNode node)
    {
        if (node is not YamlMappingNode map)
        {
            yield break;
        }

        var kind = Scalar(map, "kind");
        IEnumerable<YamlNode?> podSpecs = kind switch
        {
            "Pod" => [At(map, "spec")],
            "PodTemplate" => [At(map, "template", "spec")],
            "Deployment" or "StatefulSet" or "DaemonSet" or "ReplicaSet" or "ReplicationController" or "Job" => [At(map, "spec", "template", "spec")],
            "CronJob" => [At(map, "spec", "jobTemplate", "spec", "template", "spec")],
            _ => [],
        };
        foreach (var spec in podSpecs.OfType<YamlMappingNode>())
        {
            foreach (var list in ContainerLists)
            {
                if (At(spec, list) is YamlSequenceNode containers)
                {
                    foreach (var container in containers.OfType<YamlMappingNode>())
                    {
                        if (Scalar(container, "image") is { Length: > 0 } image)
                        {
                            yield return image;
                        }
                    }
                }
            }
        }

        if (kind is not null && kind.EndsWith("List", StringComparison.Ordinal) && At(map, "items") is YamlSequenceNode items)
        {
            foreach (var item in items)
            {
                foreach (var image in FromObject(item))
                {
                    yield return image;
                }
            }
        }
    }

    private static YamlNode? At(YamlMappingNode map, params string[] keys)
    {
        YamlNode? node = map;
        foreach (var key in keys)
        {
            if (node is not YamlMappingNode current || !current.Children.TryGetValue(new YamlScalarNode(key), out node))
            {
                return null;
            }
        }

        return node;
    }

    private static string? Scalar(YamlMappingNode map, string key) => (At(map, key) as YamlScalarNode)?.Value;
}
