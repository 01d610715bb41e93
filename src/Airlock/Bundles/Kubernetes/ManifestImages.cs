using Airlock.Configuration;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Airlock.Bundles.Kubernetes;

/// <summary>The images found, and what was skipped and why (a file that is a Helm template, a templated image).</summary>
public sealed record ManifestImageList(IReadOnlyList<string> Images, IReadOnlyList<string> Warnings);

/// <summary>
/// The container images Kubernetes manifests use, for feeding <c>images save</c> before crossing the gap:
/// every container, init container and ephemeral container of Pods and of the pod templates of Deployments,
/// StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs, including inside
/// <c>List</c> kinds; multi-document YAML and JSON alike. K3s's <c>HelmChart</c> and <c>HelmChartConfig</c>
/// resources (its manifests directory deploys charts with them) contribute the images of their
/// <c>valuesContent</c> and <c>jobImage</c>. Helm template expressions (<c>{{ .Values.image }}</c>) are not
/// images: they are skipped with a warning naming the file, as is a whole file that only parses once rendered.
/// </summary>
public static class ManifestImages
{
    private static readonly string[] ContainerLists = ["containers", "initContainers", "ephemeralContainers"];
    private const string TemplateMark = "{{";

    /// <summary>Images named in the files (directories: every *.yaml, *.yml, *.json below; <c>-</c>: <paramref name="stdin"/>), deduplicated and sorted.</summary>
    public static async Task<IReadOnlyList<string>> FromPathsAsync(IReadOnlyList<string> paths, TextReader? stdin, CancellationToken cancellationToken) =>
        (await FindAsync(paths, stdin, cancellationToken).ConfigureAwait(false)).Images;

    /// <summary>As <see cref="FromPathsAsync"/>, with the warnings about what was skipped.</summary>
    public static async Task<ManifestImageList> FindAsync(IReadOnlyList<string> paths, TextReader? stdin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var images = new SortedSet<string>(StringComparer.Ordinal);
        var warnings = new List<string>();
        foreach (var path in paths)
        {
            if (path == "-")
            {
                images.UnionWith(FromYaml(await (stdin ?? Console.In).ReadToEndAsync(cancellationToken).ConfigureAwait(false), "<stdin>", warnings));
                continue;
            }

            IEnumerable<string> files = Directory.Exists(path)
                ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".yaml" or ".yml" or ".json")
                    .Order(StringComparer.Ordinal).ToList()
                : File.Exists(path) ? new[] { path } : throw new FileNotFoundException($"{path} does not exist", path);
            foreach (var file in files)
            {
                images.UnionWith(FromYaml(await File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false), file, warnings));
            }
        }

        return new ManifestImageList([.. images], warnings);
    }

    /// <summary>Images named in one YAML or JSON text (any number of documents).</summary>
    public static IEnumerable<string> FromYaml(string text, string source) => FromYaml(text, source, []);

    /// <summary>Images named in one YAML or JSON text; what is skipped is added to <paramref name="warnings"/>.</summary>
    public static IReadOnlyList<string> FromYaml(string text, string source, List<string> warnings)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(warnings);
        IReadOnlyList<YamlNode> documents;
        try
        {
            documents = YamlWalker.LoadDocuments(new StringReader(text));
        }
        catch (YamlException ex)
        {
            if (text.Contains(TemplateMark, StringComparison.Ordinal))
            {
                // A chart's templates/ directory: YAML only once Helm has rendered it.
                warnings.Add($"{source} is a Helm template ({TemplateMark} … }}}} expressions), not YAML; skipped: render it first, e.g. helm template CHART | airlock images list -");
                return [];
            }

            throw new FormatException($"{source}:{ex.Start.Line}:{ex.Start.Column}: {ex.Message}", ex);
        }

        var found = new List<string>();
        foreach (var document in documents)
        {
            FromObject(document, source, found, warnings);
        }

        return found;
    }

    private static void FromObject(YamlNode node, string source, List<string> found, List<string> warnings)
    {
        if (node is not YamlMappingNode map)
        {
            return;
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
                        switch (At(container, "image"))
                        {
                            case YamlScalarNode { Value: { Length: > 0 } image } imageNode:
                                Add(image, $"{source}:{imageNode.Start.Line}", found, warnings);
                                break;
                            case YamlMappingNode templated:
                                // `image: {{ .Values.image }}` unquoted reads as a YAML map.
                                warnings.Add($"{source}:{templated.Start.Line}: image is not a string (an unquoted Helm expression such as {TemplateMark} .Values.image }}}}?); "
                                    + "skipped: list the rendered chart (helm template CHART | airlock images list -)");
                                break;
                        }
                    }
                }
            }
        }

        if (kind is "HelmChart" or "HelmChartConfig")
        {
            FromHelmChart(map, source, found, warnings);
        }

        if (kind is not null && kind.EndsWith("List", StringComparison.Ordinal) && At(map, "items") is YamlSequenceNode items)
        {
            foreach (var item in items)
            {
                FromObject(item, source, found, warnings);
            }
        }
    }

    /// <summary>
    /// A K3s <c>HelmChart</c>/<c>HelmChartConfig</c>: <c>spec.jobImage</c>, and the images in <c>spec.valuesContent</c> by the
    /// conventions charts follow — an <c>image</c> (or <c>…Image</c>) key holding a reference, or a map of <c>repository</c>
    /// with <c>tag</c>/<c>digest</c> and an optional <c>registry</c> (else <c>global.imageRegistry</c> or K3s's
    /// <c>global.systemDefaultRegistry</c>). Images a chart only names in its own defaults cannot be seen without the chart.
    /// </summary>
    private static void FromHelmChart(YamlMappingNode chart, string source, List<string> found, List<string> warnings)
    {
        var name = Scalar(chart, "metadata", "name") ?? "?";
        if (At(chart, "spec", "jobImage") is YamlScalarNode { Value: { Length: > 0 } jobImage } jobNode)
        {
            Add(jobImage, $"{source}:{jobNode.Start.Line}", found, warnings);
        }

        if (At(chart, "spec", "valuesContent") is not YamlScalarNode { Value: { Length: > 0 } content } contentNode)
        {
            return;
        }

        var where = $"{source}:{contentNode.Start.Line} (HelmChart {name} valuesContent)";
        IReadOnlyList<YamlNode> values;
        try
        {
            values = YamlWalker.LoadDocuments(new StringReader(content));
        }
        catch (YamlException ex)
        {
            warnings.Add($"{where}: not YAML ({ex.Message}); its images are not listed");
            return;
        }

        foreach (var document in values)
        {
            if (document is YamlMappingNode root)
            {
                var registry = Scalar(root, "global", "imageRegistry") ?? Scalar(root, "global", "systemDefaultRegistry");
                FromValues(root, registry, where, found, warnings);
            }
        }
    }

    private static void FromValues(YamlNode node, string? globalRegistry, string where, List<string> found, List<string> warnings)
    {
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (keyNode, value) in map.Children)
                {
                    var key = (keyNode as YamlScalarNode)?.Value ?? string.Empty;
                    var isImageKey = key == "image" || key.EndsWith("Image", StringComparison.Ordinal);
                    if (isImageKey && value is YamlScalarNode { Value: { Length: > 0 } reference })
                    {
                        Add(reference, where, found, warnings);
                    }
                    else if (isImageKey && value is YamlMappingNode parts && Scalar(parts, "repository") is { Length: > 0 } repository)
                    {
                        FromImageParts(parts, repository, globalRegistry, where, found, warnings);
                    }
                    else
                    {
                        FromValues(value, globalRegistry, where, found, warnings);
                    }
                }

                break;
            case YamlSequenceNode sequence:
                foreach (var item in sequence)
                {
                    FromValues(item, globalRegistry, where, found, warnings);
                }

                break;
        }
    }

    private static void FromImageParts(YamlMappingNode parts, string repository, string? globalRegistry, string where, List<string> found, List<string> warnings)
    {
        var tag = Scalar(parts, "tag");
        var digest = Scalar(parts, "digest");
        if (string.IsNullOrEmpty(tag) && string.IsNullOrEmpty(digest))
        {
            warnings.Add($"{where}: image {repository} has no tag (the chart's own default applies, which only the chart knows); skipped: give image.tag");
            return;
        }

        var registry = Scalar(parts, "registry") is { Length: > 0 } own ? own : globalRegistry;
        var reference = (string.IsNullOrEmpty(registry) ? repository : $"{registry.TrimEnd('/')}/{repository}")
            + (string.IsNullOrEmpty(tag) ? string.Empty : ":" + tag)
            + (string.IsNullOrEmpty(digest) ? string.Empty : "@" + digest);
        Add(reference, where, found, warnings);
    }

    private static void Add(string image, string where, List<string> found, List<string> warnings)
    {
        if (image.Contains(TemplateMark, StringComparison.Ordinal))
        {
            warnings.Add($"{where}: image \"{image}\" is a Helm template expression, not an image; skipped: list the rendered chart (helm template CHART | airlock images list -)");
            return;
        }

        found.Add(image);
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

    private static string? Scalar(YamlMappingNode map, params string[] keys) => (At(map, keys) as YamlScalarNode)?.Value;
}
