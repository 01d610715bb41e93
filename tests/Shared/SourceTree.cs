namespace Airlock.Testing;

/// <summary>The repository a test runs from (found above the test binary), for tests that read its scripts or sources.</summary>
public static class SourceTree
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "install.sh")) && File.Exists(Path.Combine(dir.FullName, "Airlock.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (with install.sh) not found above " + AppContext.BaseDirectory);
    }
}
