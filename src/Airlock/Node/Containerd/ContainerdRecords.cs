using Airlock.Oci;

namespace Airlock.Node.Containerd;

/// <summary>The daemon's answer to Version: what a <c>ctr version</c> prints as server version.</summary>
public sealed record ContainerdVersion(string Version, string Revision);

/// <summary>A committed blob in containerd's content store and its mutable labels.</summary>
public sealed record ContentInfo(Digest Digest, long Size, IReadOnlyDictionary<string, string> Labels);

/// <summary>An ingest in progress (or left behind): what <c>ctr content active</c> lists.</summary>
public sealed record IngestStatus(string Ref, long Offset, long Total, string Expected);

/// <summary>An image record: a name pointing at a root descriptor, with labels.</summary>
public sealed record ContainerdImage(string Name, Descriptor Target, IReadOnlyDictionary<string, string> Labels);

/// <summary>A container record: its id and the name of the image it was made from.</summary>
public sealed record ContainerdContainer(string Id, string Image);

/// <summary>A mount a snapshotter hands out for a snapshot, passed on to the diff applier unchanged.</summary>
internal sealed record SnapshotMount(string Type, string Source, IReadOnlyList<string> Options);

/// <summary>What a snapshotter knows about one snapshot key.</summary>
internal sealed record SnapshotInfo(string Name, string Parent, string Kind, IReadOnlyDictionary<string, string> Labels);
