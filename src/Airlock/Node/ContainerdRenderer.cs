using System.Text;
using Airlock.GoCompat;
using Airlock.IO;
using Airlock.Node.ContainerdTemplates;

namespace Airlock.Node;

/// <summary>A file the rendering wants on disk, with what is there now (null when absent).</summary>
public sealed record PlannedFile(string Path, string Content, string? Current)
{
    public bool Changes => Current != Content;
}

/// <summary>
/// What rendering would do: files to write, and previously generated files (<c>certs.d/&lt;host&gt;</c> directories,
/// proxy.env) to remove. Computed without touching the disk so <c>--dry-run</c> and <c>--diff</c> show exactly what
/// <see cref="ContainerdRenderer.ApplyAsync"/> then does.
/// </summary>
public sealed record RenderPlan(IReadOnlyList<PlannedFile> Files, IReadOnlyList<PlannedFile> StaleFiles)
{
    /// <summary>Previously generated <c>certs.d/&lt;host&gt;</c> directories to remove.</summary>
    public IReadOnlyList<string> StaleHostDirectories =>
        StaleFiles.Where(f => System.IO.Path.GetFileName(f.Path) == ContainerdRenderer.HostsTomlName).Select(f => System.IO.Path.GetDirectoryName(f.Path)!).ToList();

    public bool HasChanges => StaleFiles.Count > 0 || Files.Any(f => f.Changes);

    /// <summary>A unified diff (<c>--- a/… +++ b/…</c>, 3 lines of context) of every change, empty when none.</summary>
    public string Diff()
    {
        var sb = new StringBuilder();
        foreach (var file in Files.Where(f => f.Changes))
        {
            sb.Append(TextDiff.Unified(file.Current, file.Content, file.Path));
        }

        foreach (var file in StaleFiles)
        {
            sb.Append(TextDiff.Unified(file.Current, null, file.Path));
        }

        return sb.ToString();
    }
}

/// <summary>
/// Renders registries.yaml to <c>&lt;data-dir&gt;/agent/etc/containerd/config.toml</c> and <c>certs.d/*/hosts.toml</c>.
/// Writes are atomic (temp file, fsync, rename) and skipped when the content is already right, so rendering
/// twice changes nothing; directories a previous rendering generated for registries no longer configured are
/// removed, as K3s's <c>cleanContainerdHosts</c> does, recognised by the generated-file header — a hosts.toml
/// written by hand is never touched.
/// </summary>
public static class ContainerdRenderer
{
    public const string HostsTomlName = "hosts.toml";
    public const string ConfigTomlName = "config.toml";

    public const string ProxyEnvName = "proxy.env";

    /// <summary>
    /// Works out the files (config.toml, certs.d/*/hosts.toml, and proxy.env when a proxy is configured — an
    /// <c>EnvironmentFile</c> for containerd's service) and what to remove, reading only. With
    /// <paramref name="nodeMirror"/>, registries stock containerd cannot serve as registries.yaml says (rewrites, no
    /// default endpoint) are pointed at the node-local mirror listening there, and with <paramref name="sharePeers"/> also
    /// every registry the peer-to-peer mirror shares (<see cref="RegistryEndpoints.IsPeerShared"/>); every other
    /// hosts.toml is K3s's.
    /// </summary>
    public static async Task<RenderPlan> PlanAsync(
        RegistriesFile registries,
        ContainerdConfigOptions options,
        bool disableDefaultEndpoint,
        CancellationToken cancellationToken,
        IReadOnlyList<KeyValuePair<string, string>>? proxyEnvironment = null,
        System.Net.IPEndPoint? nodeMirror = null,
        bool sharePeers = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        var header = HostsTomlWriter.Header(options.Generator);
        // A config.toml.tmpl beside config.toml replaces the generated file (GoTemplateException when it is broken).
        var config = await ContainerdConfigTemplate.RenderAsync(options, registries, disableDefaultEndpoint, cancellationToken).ConfigureAwait(false);
        var files = new List<PlannedFile>
        {
            await PlannedAsync(Path.Combine(options.ContainerdDir, ConfigTomlName), config, cancellationToken).ConfigureAwait(false),
        };
        var stale = new List<PlannedFile>();
        var proxyPath = Path.Combine(options.ContainerdDir, ProxyEnvName);
        if (proxyEnvironment is { Count: > 0 })
        {
            files.Add(await PlannedAsync(proxyPath, header + ContainerdProxyEnvironment.Render(proxyEnvironment), cancellationToken).ConfigureAwait(false));
        }
        else if (await ReadGeneratedAsync(proxyPath, header, cancellationToken).ConfigureAwait(false) is { } oldProxy)
        {
            stale.Add(new PlannedFile(proxyPath, string.Empty, oldProxy));
        }

        var (hosts, staleHosts) = await PlanHostsAsync(registries, options.CertsDir, options.Generator, disableDefaultEndpoint, nodeMirror, cancellationToken, sharePeers)
            .ConfigureAwait(false);
        files.AddRange(hosts);
        stale.AddRange(staleHosts);
        return new RenderPlan(files, stale);
    }

    /// <summary>
    /// Only the <c>hosts.toml</c> tree, one <c>&lt;host&gt;/hosts.toml</c> per registry under <paramref name="hostsDirectory"/>, and
    /// the previously generated host directories there to remove: for a containerd whose own config already points its
    /// <c>config_path</c> at that directory (Canonical Kubernetes reads <c>/var/snap/k8s/common/etc/containerd/hosts.d</c>).
    /// With <paramref name="mirrorFirst"/>, a registry that goes through the node mirror only to share blobs with peers lists
    /// the mirror first and its own endpoints after it (<see cref="HostsTomlWriter.WriteMirrorFirst"/>), for a containerd
    /// that keeps pulling when the agent is gone; a registry that needs the mirror (rewrites, no default endpoint) has it as
    /// its only server either way, since containerd falling back by itself would break what registries.yaml says.
    /// </summary>
    public static async Task<RenderPlan> PlanHostsAsync(RegistriesFile registries, string hostsDirectory, string generator, bool disableDefaultEndpoint,
        System.Net.IPEndPoint? nodeMirror, CancellationToken cancellationToken, bool sharePeers = false, bool mirrorFirst = false)
    {
        var endpoints = new RegistryEndpoints(registries, disableDefaultEndpoint);
        var header = HostsTomlWriter.Header(generator);
        var files = new List<PlannedFile>();
        var stale = new List<PlannedFile>();
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        // A key such as "../x" or "reg.example.com/path" would name a directory outside certs.d or a nested one
        // containerd never reads; validation reports it, rendering leaves it out.
        foreach (var host in endpoints.Hosts.Where(h => IsSingleSegment(h.Directory)))
        {
            var dir = Path.Combine(hostsDirectory, host.Directory);
            wanted.Add(dir);
            // With the peer-to-peer mirror, a shared registry goes through the node mirror too: it asks peers first.
            var content = nodeMirror is null ? HostsTomlWriter.Write(host, generator)
                : host.NeedsNodeMirror ? HostsTomlWriter.WriteMirrored(host, HostsTomlWriter.MirrorServerUrl(nodeMirror), generator)
                : !sharePeers || !RegistryEndpoints.IsPeerShared(registries, host.Key) ? HostsTomlWriter.Write(host, generator)
                : mirrorFirst ? HostsTomlWriter.WriteMirrorFirst(host, HostsTomlWriter.MirrorServerUrl(nodeMirror), generator)
                : HostsTomlWriter.WriteMirrored(host, HostsTomlWriter.MirrorServerUrl(nodeMirror), generator);
            files.Add(await PlannedAsync(Path.Combine(dir, HostsTomlName), content, cancellationToken).ConfigureAwait(false));
        }

        if (Directory.Exists(hostsDirectory))
        {
            foreach (var dir in Directory.GetDirectories(hostsDirectory).Order(StringComparer.Ordinal))
            {
                var hostsToml = Path.Combine(dir, HostsTomlName);
                if (!wanted.Contains(dir) && await ReadGeneratedAsync(hostsToml, header, cancellationToken).ConfigureAwait(false) is { } old)
                {
                    stale.Add(new PlannedFile(hostsToml, string.Empty, old));
                }
            }
        }

        return new RenderPlan(files, stale);
    }

    public static async Task ApplyAsync(RenderPlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        foreach (var file in plan.Files.Where(f => f.Changes))
        {
            await WriteAtomicallyAsync(file.Path, file.Content, cancellationToken).ConfigureAwait(false);
        }

        foreach (var file in plan.StaleFiles)
        {
            if (Path.GetFileName(file.Path) == HostsTomlName)
            {
                Directory.Delete(Path.GetDirectoryName(file.Path)!, recursive: true);
            }
            else
            {
                File.Delete(file.Path);
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="content"/> through <see cref="AtomicFile"/>, readable by root only from its first byte:
    /// config.toml carries registry credentials (K3s writes its files 0600 too).
    /// </summary>
    public static Task WriteAtomicallyAsync(string path, string content, CancellationToken cancellationToken) =>
        AtomicFile.WriteAsync(path, Encoding.UTF8.GetBytes(content), AtomicFile.Private, cancellationToken);

    private static async Task<PlannedFile> PlannedAsync(string path, string content, CancellationToken cancellationToken) =>
        new(path, content, File.Exists(path) ? await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false) : null);

    /// <summary>The file's content when it exists and starts with our generated header, else null.</summary>
    private static async Task<string?> ReadGeneratedAsync(string path, string header, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var content = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        return content.StartsWith(header, StringComparison.Ordinal) ? content : null;
    }

    private static bool IsSingleSegment(string name) =>
        name.Length > 0 && name is not ("." or "..") && name.IndexOfAny(['/', '\\', '\0']) < 0;
}
