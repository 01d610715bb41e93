namespace Airlock.Bundles;

/// <summary>
/// An archive or layout that cannot be read safely: the message names the file, the entry (when there is
/// one) and the problem, so an operator importing an untrusted file knows exactly what was refused.
/// </summary>
public sealed class BundleFormatException : IOException
{
    public BundleFormatException(string file, string? entry, string problem, Exception? inner = null)
        : base(entry is null ? $"{file}: {problem}" : $"{file}: entry \"{entry}\": {problem}", inner)
    {
        File = file;
        Entry = entry;
        Problem = problem;
    }

    /// <summary>The archive or layout path.</summary>
    public string File { get; }

    /// <summary>The entry inside it, if the problem is with one.</summary>
    public string? Entry { get; }

    public string Problem { get; }
}

/// <summary>A reference or platform that names nothing in a source.</summary>
public sealed class ImageNotFoundException(string message) : InvalidOperationException(message);
