namespace Airlock.Tests.Node;

/// <summary>
/// The K3s registries.yaml golden vectors: <c>shared/vectors/k3s-registries</c> beside the checkout when present
/// (or <c>$AIRLOCK_SHARED_DIR/vectors/k3s-registries</c>), so new cases are picked up, else the copy kept in
/// this folder.
/// </summary>
internal static class K3sVectors
{
    public const string K3sDataDir = "/var/lib/rancher/k3s";

    public static readonly string Directory = Locate();

    public static IEnumerable<object[]> Cases() =>
        System.IO.Directory.GetDirectories(Directory, "case-*").Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(name => new object[] { name! });

    public static string CaseDir(string name) => Path.Combine(Directory, name);

    public static bool DisableDefault(string name) =>
        File.ReadAllText(Path.Combine(CaseDir(name), "flags")).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Contains("disable-default-registry-endpoint", StringComparer.Ordinal);

    public static IReadOnlyList<string> HostsList(string name) =>
        File.ReadAllLines(Path.Combine(CaseDir(name), "expected", "hosts.list")).Where(l => l.Length > 0).ToList();

    private static string Locate()
    {
        if (Environment.GetEnvironmentVariable("AIRLOCK_SHARED_DIR") is { Length: > 0 } shared
            && System.IO.Directory.Exists(Path.Combine(shared, "vectors", "k3s-registries")))
        {
            return Path.Combine(shared, "vectors", "k3s-registries");
        }

        string? copy = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "vectors", "k3s-registries");
            if (System.IO.Directory.Exists(candidate))
            {
                return candidate;
            }

            var local = Path.Combine(dir.FullName, "tests", "Airlock.Tests", "Node", "Vectors");
            if (copy is null && System.IO.Directory.Exists(local))
            {
                copy = local;
            }
        }

        return copy ?? throw new DirectoryNotFoundException("K3s registry vectors not found: set AIRLOCK_SHARED_DIR or keep tests/Airlock.Tests/Node/Vectors");
    }
}
