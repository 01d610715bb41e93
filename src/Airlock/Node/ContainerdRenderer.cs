using System.Text;
using Airlock.Content;

namespace Airlock.Node;

/// <summary>A file the rendering wants on disk, with what is there now (null when absent).</summary>
public sealed record PlannedFile(string Path, string Content, string? Current)
{
    public bool Changes => Current != Content;
}

/// <summary>
/// What rendering would do: files to write and previously generated <c>certs.d/&lt;host&gt;</c> directories to
/// remove. Computed without touching the disk so <c>--dry-run</c> and <c>--diff</c> show exactly what
/// <see cref="ContainerdRenderer.ApplyAsync"/> then does.
/// </summary>
public sealed record RenderPlan(IReadOnlyList<PlannedFile> Files, IReadOnlyList<string> StaleHostDirectories)
{
    public bool HasChanges => StaleHostDirectories.Count > 0 || Files.Any(f => f.Changes);

    /// <summary>A unified diff (<c>--- a/… +++ b/…</c>, 3 lines of context) of every change, empty when none.</summary>
    public string Diff()
    {
        var sb = new StringBuilder();
        foreach (var file in Files.Where(f => f.Changes))
        {
            sb.Append(TextDiff.Unified(file.Current, file.Content, file.Path));
        }

        foreach (var dir in StaleHostDirectories)
        {
            var path = System.IO.Path.Combine(dir, ContainerdRenderer.HostsTomlName);
            sb.Append(TextDiff.Unified(File.Exists(path) ? File.ReadAllText(path) : string.Empty, null, path));
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

    public static RenderPlan Plan(RegistriesFile registries, ContainerdConfigOptions options, bool disableDefaultEndpoint)
    {
        ArgumentNullException.ThrowIfNull(options);
        var endpoints = new RegistryEndpoints(registries, disableDefaultEndpoint);
        var files = new List<PlannedFile>
        {
            Planned(Path.Combine(options.ContainerdDir, ConfigTomlName), ContainerdConfigWriter.Write(options, registries)),
        };
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var host in endpoints.Hosts)
        {
            var dir = Path.Combine(options.CertsDir, host.Directory);
            wanted.Add(dir);
            files.Add(Planned(Path.Combine(dir, HostsTomlName), HostsTomlWriter.Write(host, options.Generator)));
        }

        var stale = new List<string>();
        if (Directory.Exists(options.CertsDir))
        {
            var header = HostsTomlWriter.Header(options.Generator);
            foreach (var dir in Directory.GetDirectories(options.CertsDir).Order(StringComparer.Ordinal))
            {
                if (!wanted.Contains(dir) && StartsWith(Path.Combine(dir, HostsTomlName), header))
                {
                    stale.Add(dir);
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

        foreach (var dir in plan.StaleHostDirectories)
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Writes through a temp file in the same directory, fsyncs it, renames it over the target, fsyncs the directory.</summary>
    public static async Task WriteAtomicallyAsync(string path, string content, CancellationToken cancellationToken)
    {
        var dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(content), cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            // config.toml carries registry credentials: readable by root only, as K3s writes it.
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            File.Move(temp, path, overwrite: true);
            FileSystemDurability.FsyncDirectory(dir);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    private static PlannedFile Planned(string path, string content) =>
        new(path, content, File.Exists(path) ? File.ReadAllText(path) : null);

    private static bool StartsWith(string path, string header)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var reader = new StreamReader(path);
        var buffer = new char[header.Length];
        var read = reader.ReadBlock(buffer, 0, buffer.Length);
        return read == header.Length && new string(buffer) == header;
    }
}
