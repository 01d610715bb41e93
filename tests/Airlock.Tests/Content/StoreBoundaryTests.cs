namespace Airlock.Tests.Content;

/// <summary>
/// Handlers and garbage collection see the store contracts only: the filesystem store is named by the composition
/// roots alone, so another store (S3 + etcd) plugs in there and nowhere else.
/// </summary>
public sealed class StoreBoundaryTests
{
    private static readonly string[] CompositionRoots =
    [
        "src/Airlock/Registry/RegistryServer.cs",
        "src/Airlock.Cli/Commands/RegistryCommand.cs",
    ];

    [Fact]
    public void Only_the_composition_roots_name_the_filesystem_store()
    {
        var implementation = Path.Combine("src", "Airlock", "Content", "FileSystemStore") + Path.DirectorySeparatorChar;
        var offenders = new[] { "src/Airlock", "src/Airlock.Cli" }
            .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(SourceTree.Root, folder), "*.cs", SearchOption.AllDirectories))
            .Select(path => Path.GetRelativePath(SourceTree.Root, path))
            .Where(path => !path.StartsWith(implementation, StringComparison.Ordinal) && !path.Contains("/obj/", StringComparison.Ordinal))
            .Where(path => File.ReadAllText(Path.Combine(SourceTree.Root, path)).Contains("Content.FileSystemStore", StringComparison.Ordinal))
            .Where(path => !CompositionRoots.Contains(path.Replace(Path.DirectorySeparatorChar, '/')))
            .ToList();
        Assert.Empty(offenders);
    }
}
