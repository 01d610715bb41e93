namespace Airlock.Content.FileSystemStore;

/// <summary>
/// The keys of the repository index, one ordinal key space for both listings: <c>r&lt;repository&gt;</c> for a
/// repository and <c>t&lt;repository&gt;:&lt;tag&gt;</c> for a tag (<c>:</c> is in neither grammar). Repositories then
/// sort among themselves as their names do, which is the OCI spec's lexical order, and each repository's tags form
/// one contiguous run in their own order. <c>a&lt;repository&gt;</c> records the repository's authenticated-only mark,
/// so a start-up reads the marks from the index instead of walking every repository folder for them.
/// </summary>
internal static class IndexKeys
{
    public const char RepositoryKind = 'r';
    public const char TagKind = 't';
    public const char MarkKind = 'a';

    /// <summary>Every authenticated-only mark's key starts with this.</summary>
    public const string MarkPrefix = "a";

    /// <summary>Every repository key starts with this.</summary>
    public const string RepositoryPrefix = "r";

    public static string Repository(string repository) => RepositoryPrefix + repository;

    public static string Mark(string repository) => MarkPrefix + repository;

    public static string Tag(string repository, string tag) => TagPrefix(repository) + tag;

    /// <summary>Every key of the repository's tags starts with this.</summary>
    public static string TagPrefix(string repository) => TagKind + repository + ":";

    /// <summary>The repository a key belongs to (its own key, its mark, or one of its tags).</summary>
    public static string RepositoryOf(string key) =>
        key[0] == TagKind ? key[1..key.IndexOf(':', StringComparison.Ordinal)] : key[1..];

    /// <summary>Ordinal comparison of a key's ASCII bytes with a key string (the same order as <see cref="string.CompareOrdinal(string, string)"/>).</summary>
    public static int Compare(ReadOnlySpan<byte> key, string other)
    {
        var length = Math.Min(key.Length, other.Length);
        for (var i = 0; i < length; i++)
        {
            var difference = key[i] - other[i];
            if (difference != 0)
            {
                return difference;
            }
        }

        return key.Length - other.Length;
    }

    /// <summary>A kind, then printable ASCII without spaces; a tag key also holds its <c>:</c>. Names are checked in full where they are used.</summary>
    public static bool IsWellFormed(ReadOnlySpan<byte> key)
    {
        if (key.Length < 2 || (key[0] != RepositoryKind && key[0] != TagKind && key[0] != MarkKind))
        {
            return false;
        }

        foreach (var b in key)
        {
            if (b is <= (byte)' ' or >= 0x7f)
            {
                return false;
            }
        }

        return key[0] != TagKind || key.IndexOf((byte)':') > 1;
    }
}
