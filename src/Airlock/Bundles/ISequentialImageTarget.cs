using Airlock.Content;

namespace Airlock.Bundles;

/// <summary>
/// A target that stores content in one sequence, one blob after another (an archive: a tar is sequential).
/// <see cref="ImageGraph.CopyAsync"/> gives it the graph in a fixed order — children before parents, in
/// document order, each digest once — so the same graph always gives the same bytes, and downloads the blobs
/// after the one being written ahead into spool files in <see cref="SpoolDirectory"/>, so the network time
/// overlaps the writing.
/// </summary>
public interface ISequentialImageTarget : IImageTarget
{
    /// <summary>Where blobs downloaded ahead of their turn wait (as unlinked files, see <see cref="BlobSpool"/>).</summary>
    string SpoolDirectory { get; }
}
