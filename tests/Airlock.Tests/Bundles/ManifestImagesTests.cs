using Airlock.Bundles.Kubernetes;

namespace Airlock.Tests.Bundles;

public sealed class ManifestImagesTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private const string EveryKind = """
        apiVersion: v1
        kind: Pod
        metadata: { name: p }
        spec:
          initContainers: [{ name: init, image: busybox:1.36 }]
          containers: [{ name: c, image: nginx:1.25 }]
          ephemeralContainers: [{ name: debug, image: docker.io/library/alpine:3.19 }]
        ---
        apiVersion: apps/v1
        kind: Deployment
        spec:
          template:
            spec:
              containers:
              - name: web
                image: registry.local:5000/team/web:2.0
              - name: sidecar
                image: nginx:1.25
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        spec: { template: { spec: { containers: [{ name: db, image: postgres:16 }] } } }
        ---
        apiVersion: apps/v1
        kind: DaemonSet
        spec: { template: { spec: { containers: [{ name: agent, image: rancher/mirrored-pause:3.6 }] } } }
        ---
        apiVersion: apps/v1
        kind: ReplicaSet
        spec: { template: { spec: { containers: [{ name: rs, image: quay.io/org/rs@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef }] } } }
        ---
        apiVersion: batch/v1
        kind: Job
        spec: { template: { spec: { containers: [{ name: job, image: perl:5.38 }] } } }
        ---
        apiVersion: batch/v1
        kind: CronJob
        spec:
          jobTemplate:
            spec:
              template:
                spec:
                  containers: [{ name: cron, image: curlimages/curl:8.5.0 }]
        ---
        apiVersion: v1
        kind: ConfigMap
        data: { image: not-an-image:1 }
        """;

    [Fact]
    public void Images_of_every_workload_kind_and_container_list_are_found()
    {
        var images = ManifestImages.FromYaml(EveryKind, "every.yaml").Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
        [
            "busybox:1.36", "curlimages/curl:8.5.0", "docker.io/library/alpine:3.19", "nginx:1.25", "perl:5.38", "postgres:16",
            "quay.io/org/rs@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "rancher/mirrored-pause:3.6",
            "registry.local:5000/team/web:2.0",
        ], images);
    }

    [Fact]
    public void Items_of_a_List_in_JSON_are_found()
    {
        const string list = """
            {"apiVersion":"v1","kind":"List","items":[
              {"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1"}]}}}},
              {"kind":"DeploymentList","items":[{"kind":"Pod","spec":{"containers":[{"name":"b","image":"b:2"}]}}]}
            ]}
            """;
        Assert.Equal(["a:1", "b:2"], ManifestImages.FromYaml(list, "list.json"));
    }

    [Fact]
    public async Task Directories_are_read_recursively_deduplicated_and_sorted()
    {
        Directory.CreateDirectory(_temp.File("deploy/nested"));
        File.WriteAllText(_temp.File("deploy/a.yaml"), "kind: Pod\nspec: { containers: [{ image: zeta:1 }, { image: alpha:1 }] }\n");
        File.WriteAllText(_temp.File("deploy/nested/b.yml"), "kind: Pod\nspec: { containers: [{ image: alpha:1 }] }\n");
        File.WriteAllText(_temp.File("deploy/nested/c.json"), """{"kind":"Pod","spec":{"containers":[{"image":"mid:1"}]}}""");
        File.WriteAllText(_temp.File("deploy/README.md"), "kind: Pod\nspec: { containers: [{ image: ignored:1 }] }\n");
        var images = await ManifestImages.FromPathsAsync([_temp.File("deploy")], null, CancellationToken.None);
        Assert.Equal(["alpha:1", "mid:1", "zeta:1"], images);
    }

    [Fact]
    public async Task Stdin_is_read_for_dash()
    {
        var images = await ManifestImages.FromPathsAsync(["-"], new StringReader("kind: Pod\nspec: { containers: [{ image: from-stdin:1 }] }\n"), CancellationToken.None);
        Assert.Equal(["from-stdin:1"], images);
    }

    [Fact]
    public void Invalid_YAML_is_reported_with_file_and_line()
    {
        var error = Assert.Throws<FormatException>(() => ManifestImages.FromYaml("kind: Pod\nspec: [unclosed\n", "bad.yaml").ToList());
        Assert.StartsWith("bad.yaml:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Helm_template_expressions_are_skipped_with_a_warning_naming_the_file()
    {
        const string rendered = """
            kind: Deployment
            spec:
              template:
                spec:
                  containers:
                  - { name: a, image: "{{ .Values.image }}" }
                  - { name: b, image: nginx:1.25 }
            """;
        var warnings = new List<string>();
        Assert.Equal(["nginx:1.25"], ManifestImages.FromYaml(rendered, "chart/templates/deploy.yaml", warnings));
        var warning = Assert.Single(warnings);
        Assert.StartsWith("chart/templates/deploy.yaml:6:", warning, StringComparison.Ordinal);
        Assert.Contains("{{ .Values.image }}", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_chart_templates_directory_is_skipped_file_by_file_not_failed()
    {
        Directory.CreateDirectory(_temp.File("chart/templates"));
        File.WriteAllText(_temp.File("chart/templates/deploy.yaml"),
            "{{- if .Values.enabled }}\nkind: Pod\nspec:\n  containers:\n  - image: {{ .Values.image }}\n{{- end }}\n");
        File.WriteAllText(_temp.File("chart/pod.yaml"), "kind: Pod\nspec: { containers: [{ image: plain:1 }] }\n");

        var found = await ManifestImages.FindAsync([_temp.File("chart")], null, CancellationToken.None);

        Assert.Equal(["plain:1"], found.Images);
        Assert.Contains(found.Warnings, w => w.StartsWith(_temp.File("chart/templates/deploy.yaml"), StringComparison.Ordinal) && w.Contains("helm template", StringComparison.Ordinal));
    }

    [Fact]
    public void HelmChart_valuesContent_and_jobImage_are_read_as_K3s_deploys_them()
    {
        const string helmChart = """
            apiVersion: helm.cattle.io/v1
            kind: HelmChart
            metadata: { name: traefik, namespace: kube-system }
            spec:
              chart: https://%{KUBERNETES_API}%/static/charts/traefik.tgz
              jobImage: rancher/klipper-helm:v0.8.3-build20240228
              valuesContent: |-
                global:
                  systemDefaultRegistry: registry.local:5000
                image:
                  repository: rancher/mirrored-library-traefik
                  tag: 2.10.5
                sidecar:
                  image: docker.io/library/busybox:1.36
                proxy:
                  initImage: "{{ .Values.global.registry }}/init:1"
                  image:
                    registry: quay.io
                    repository: org/proxy
                    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
                exporter:
                  image: { repository: org/exporter }
            ---
            apiVersion: helm.cattle.io/v1
            kind: HelmChartConfig
            metadata: { name: coredns }
            spec:
              valuesContent: |-
                image: { repository: rancher/mirrored-coredns-coredns, tag: 1.11.1 }
            """;
        var warnings = new List<string>();

        var images = ManifestImages.FromYaml(helmChart, "manifests/traefik.yaml", warnings).Order(StringComparer.Ordinal).ToList();

        Assert.Equal(
        [
            "docker.io/library/busybox:1.36",
            "quay.io/org/proxy@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "rancher/klipper-helm:v0.8.3-build20240228",
            "rancher/mirrored-coredns-coredns:1.11.1",
            "registry.local:5000/rancher/mirrored-library-traefik:2.10.5",
        ], images);
        Assert.Equal(2, warnings.Count);
        Assert.Contains(warnings, w => w.Contains("HelmChart traefik valuesContent", StringComparison.Ordinal) && w.Contains("{{ .Values.global.registry }}", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("org/exporter has no tag", StringComparison.Ordinal));
    }
}
