using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Airlock.Content;
using Airlock.IO;
using Airlock.Oci;

namespace Airlock.Bundles;

/// <summary>Settings of one <see cref="ImageGraph.CopyAsync"/>.</summary>
public sealed record CopyOptions
{
    /// <summary>
    /// Blobs transferred at once. Into an <see cref="ISequentialImageTarget"/> that is the blob being written plus
    /// up to <c>Parallelism - 1</c> downloading ahead; 1 downloads nothing ahead.
    /// </summary>
    public int Parallelism { get; init; } = 4;

    /// <summary>
    /// Into an <see cref="ISequentialImageTarget"/>: at most this many bytes of blobs downloaded ahead (spooled,
    /// not yet written) at once; a single larger blob is still downloaded ahead when nothing else is.
    /// </summary>
    public long DownloadAheadBytes { get; init; } = 256L << 20;

    /// <summary>
    /// Platforms to keep from an index; <c>null</c> keeps every platform and the index as it is. Keeping a
    /// subset writes the one matching manifest as the root, or a new index of the matching manifests — whose
    /// digest then differs from the source's, since it is different content.
    /// </summary>
    public IReadOnlyList<Platform>? Platforms { get; init; }

    /// <summary>The name the root is stored under in the target (a tag or full reference); <c>null</c> for none.</summary>
    public string? Reference { get; init; }

    /// <summary>
    /// Artifacts (signatures, SBOMs) that refer to a manifest, fetched from the source and copied after it;
    /// <c>null</c> copies none.
    /// </summary>
    public Func<Descriptor, CancellationToken, ValueTask<IReadOnlyList<Descriptor>>>? Referrers { get; init; }
}

/// <summary>One graph of <see cref="ImageGraph.CopyAllAsync"/>: where from, its root, and how.</summary>
public sealed record GraphCopy(IImageSource Source, Descriptor Root, CopyOptions Options);

/// <summary>What happened to one piece of content during a copy.</summary>
public enum CopyStage
{
    /// <summary>Will be copied (reported before any transfer starts, so the total is known early).</summary>
    Planned,

    Started,

    /// <summary>Bytes written into the target so far: what a progress bar should show.</summary>
    Transferring,

    /// <summary>Bytes downloaded ahead into a spool so far; they are written into the target (<see cref="Transferring"/>) at their turn.</summary>
    Fetching,

    Skipped,
    Completed,
}

/// <summary>Progress of one blob or manifest: <paramref name="Bytes"/> so far of <c>Content.Size</c> in its <paramref name="Stage"/>.</summary>
public sealed record CopyProgress(Descriptor Content, long Bytes, CopyStage Stage);

/// <summary>
/// The one graph walk behind copy, save, load and export: children before parents (config and layers, then
/// image manifests, then the index), a bounded number of blob transfers at once, nothing copied that the
/// target already has, and content shared between images transferred once even when several copies into
/// the same target run at the same time. Manifests are copied as the exact bytes read, so digests hold.
/// Into an <see cref="ISequentialImageTarget"/> (an archive) the same graph is planned first and written in
/// a fixed order, with downloads running ahead of the writing (see <c>SequentialCopy</c>).
/// </summary>
public static partial class ImageGraph
{
    // In-flight and finished transfers per target, so images sharing layers never transfer them twice.
    private static readonly ConditionalWeakTable<IImageTarget, ConcurrentDictionary<Digest, Lazy<Task>>> Transfers = new();

    /// <summary>Copies the graph under <paramref name="root"/>; returns the root as written (see <see cref="CopyOptions.Platforms"/>).</summary>
    public static async Task<Descriptor> CopyAsync(IImageSource source, IImageTarget target, Descriptor root, CopyOptions? options,
        IProgress<CopyProgress>? progress, CancellationToken cancellationToken)
    {
        options ??= new CopyOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Parallelism, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(options.DownloadAheadBytes);
        if (target is ISequentialImageTarget sequential)
        {
            return (await CopyAllAsync([new GraphCopy(source, root, options)], sequential, progress, cancellationToken).ConfigureAwait(false))[0];
        }

        var (selected, content) = await SelectPlatformsAsync(source, root, options.Platforms, cancellationToken).ConfigureAwait(false);
        using var slots = new SemaphoreSlim(options.Parallelism);
        var walk = new Walk(source, target, options, progress, slots, Transfers.GetValue(target, _ => new()));
        await walk.CopyManifestAsync(selected, content, options.Reference, cancellationToken).ConfigureAwait(false);
        return selected;
    }

    /// <summary>
    /// Copies several graphs into one sequential target (an archive) as one sequence: planned in the order given,
    /// so downloads run ahead across the graphs too (the next image downloads while the last layers of one are
    /// written). Content shared by the graphs is written once. The first copy's <see cref="CopyOptions.Parallelism"/>
    /// and <see cref="CopyOptions.DownloadAheadBytes"/> bound the whole sequence. Returns each root as written.
    /// </summary>
    public static async Task<IReadOnlyList<Descriptor>> CopyAllAsync(IReadOnlyList<GraphCopy> copies, ISequentialImageTarget target,
        IProgress<CopyProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(copies);
        ArgumentOutOfRangeException.ThrowIfZero(copies.Count);
        var limits = copies[0].Options;
        ArgumentOutOfRangeException.ThrowIfLessThan(limits.Parallelism, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(limits.DownloadAheadBytes);
        var sequence = new SequentialCopy(target, limits, progress);
        var written = new List<Descriptor>();
        foreach (var copy in copies)
        {
            var (selected, content) = await SelectPlatformsAsync(copy.Source, copy.Root, copy.Options.Platforms, cancellationToken).ConfigureAwait(false);
            await sequence.PlanAsync(copy.Source, selected, content, copy.Options, cancellationToken).ConfigureAwait(false);
            written.Add(selected);
        }

        await sequence.RunAsync(cancellationToken).ConfigureAwait(false);
        return written;
    }

    /// <summary>
    /// The root to write for the requested platforms: the root itself when all of its manifests match (or it
    /// is not an index), the single matching manifest, or a new index listing only the matching manifests.
    /// </summary>
    internal static async Task<(Descriptor Root, ReadOnlyMemory<byte> Content)> SelectPlatformsAsync(IImageSource source, Descriptor root,
        IReadOnlyList<Platform>? platforms, CancellationToken cancellationToken)
    {
        var content = await source.ReadManifestAsync(root, cancellationToken).ConfigureAwait(false);
        var clean = root with { Annotations = null };
        if (platforms is null || platforms.Count == 0)
        {
            return (clean, content);
        }

        var document = ManifestDocument.Parse(content.Span, root.MediaType);
        if (!document.IsIndex)
        {
            return (clean, content);
        }

        var kept = document.Manifests.Where(m => platforms.Any(p => p.Matches(m.Platform))).ToList();
        if (kept.Count == document.Manifests.Count)
        {
            return (clean, content);
        }

        if (kept.Count == 0)
        {
            var available = string.Join(", ", document.Manifests.Select(m => m.Platform?.ToString()).Where(p => p is not null).Distinct());
            throw new ImageNotFoundException($"{root.Digest} has no manifest for {string.Join(", ", platforms)} (it has {available})");
        }

        if (kept.Count == 1)
        {
            var only = kept[0];
            return (only, await source.ReadManifestAsync(only, cancellationToken).ConfigureAwait(false));
        }

        var index = BundleJson.Serialize(
            new LayoutIndex { MediaType = document.MediaType, Manifests = kept, Annotations = document.Annotations },
            BundleJsonContext.Default.LayoutIndex);
        return (new Descriptor { MediaType = document.MediaType, Digest = Digest.Sha256(index), Size = index.Length }, index);
    }

    private sealed class Walk(IImageSource source, IImageTarget target, CopyOptions options, IProgress<CopyProgress>? progress,
        SemaphoreSlim slots, ConcurrentDictionary<Digest, Lazy<Task>> transfers)
    {
        public async Task CopyManifestAsync(Descriptor manifest, ReadOnlyMemory<byte>? content, string? reference, CancellationToken cancellationToken)
        {
            content ??= await source.ReadManifestAsync(manifest, cancellationToken).ConfigureAwait(false);
            var document = ManifestDocument.Parse(content.Value.Span, manifest.MediaType);
            if (progress is not null && !document.IsIndex)
            {
                foreach (var blob in document.Children.Where(IsDistributable))
                {
                    progress.Report(new CopyProgress(blob, 0, CopyStage.Planned));
                }
            }

            var children = document.IsIndex
                ? document.Manifests.Select(child => Once(child, ct => CopyChildManifestAsync(child, ct), cancellationToken))
                : document.Children.Where(IsDistributable).Select(blob => Once(blob, ct => CopyBlobAsync(blob, ct), cancellationToken));
            await Task.WhenAll(children).ConfigureAwait(false);
            await target.WriteManifestAsync(manifest, content.Value, reference, cancellationToken).ConfigureAwait(false);
            progress?.Report(new CopyProgress(manifest, manifest.Size, CopyStage.Completed));
            if (options.Referrers is { } referrers)
            {
                foreach (var referrer in await referrers(manifest, cancellationToken).ConfigureAwait(false))
                {
                    await Once(referrer, ct => CopyChildManifestAsync(referrer, ct), cancellationToken).ConfigureAwait(false);
                }
            }
        }

        private async Task CopyChildManifestAsync(Descriptor manifest, CancellationToken cancellationToken)
        {
            // A target holding a manifest holds its graph: it was written children first.
            if (await target.HasManifestAsync(manifest, cancellationToken).ConfigureAwait(false))
            {
                progress?.Report(new CopyProgress(manifest, 0, CopyStage.Skipped));
                return;
            }

            await CopyManifestAsync(manifest, null, null, cancellationToken).ConfigureAwait(false);
        }

        private async Task CopyBlobAsync(Descriptor blob, CancellationToken cancellationToken)
        {
            await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (await target.HasBlobAsync(blob, cancellationToken).ConfigureAwait(false))
                {
                    progress?.Report(new CopyProgress(blob, 0, CopyStage.Skipped));
                    return;
                }

                var content = await OpenCountedAsync(source, blob, progress, cancellationToken).ConfigureAwait(false);
                await using (content.ConfigureAwait(false))
                {
                    await target.WriteBlobAsync(blob, content, cancellationToken).ConfigureAwait(false);
                }

                progress?.Report(new CopyProgress(blob, blob.Size, CopyStage.Completed));
            }
            finally
            {
                slots.Release();
            }
        }

        // One transfer per digest and target; a failed one is forgotten so a later copy can retry it.
        private Task Once(Descriptor content, Func<CancellationToken, Task> copy, CancellationToken cancellationToken)
        {
            var transfer = transfers.GetOrAdd(content.Digest, _ => new Lazy<Task>(() => copy(cancellationToken)));
            return AwaitAsync(content.Digest, transfer);
        }

        private async Task AwaitAsync(Digest digest, Lazy<Task> transfer)
        {
            try
            {
                await transfer.Value.ConfigureAwait(false);
            }
            catch
            {
                transfers.TryRemove(new KeyValuePair<Digest, Lazy<Task>>(digest, transfer));
                throw;
            }
        }

    }

    /// <summary>
    /// Opens a blob at the source for copying: reported as started, and counted for progress as it is read — as
    /// <see cref="CopyStage.Transferring"/> when it goes straight into the target, <see cref="CopyStage.Fetching"/> into a spool.
    /// </summary>
    private static async Task<Stream> OpenCountedAsync(IImageSource source, Descriptor blob, IProgress<CopyProgress>? progress, CancellationToken cancellationToken,
        CopyStage stage = CopyStage.Transferring)
    {
        progress?.Report(new CopyProgress(blob, 0, CopyStage.Started));
        var content = await source.OpenBlobAsync(blob, cancellationToken).ConfigureAwait(false);
        return Counted(content, blob, progress, stage);
    }

    private static Stream Counted(Stream content, Descriptor blob, IProgress<CopyProgress>? progress, CopyStage stage) =>
        progress is null ? content : new ProgressStream(content, blob, progress, stage);

    // Foreign (Windows base) layers may not be redistributed; like skopeo, copies leave them to their URLs.
    private static bool IsDistributable(Descriptor blob) =>
        !blob.MediaType.Contains("foreign", StringComparison.Ordinal) && !blob.MediaType.Contains("nondistributable", StringComparison.Ordinal);

    /// <summary>Reports bytes as they pass, at most every 1 MiB, so progress output stays cheap.</summary>
    private sealed class ProgressStream(Stream inner, Descriptor blob, IProgress<CopyProgress> progress, CopyStage stage) : DelegatingReadStream(inner), IVerifiedContent
    {
        private long _read;
        private long _reported;

        // Counting changes nothing in the content: it is as verified as what it counts.
        public bool Verifies(Digest digest, long size) => Inner is IVerifiedContent verified && verified.Verifies(digest, size);

        public override long Length => blob.Size;

        public override long Position
        {
            get => _read;
            set => throw new NotSupportedException();
        }

        protected override int OnRead(ReadOnlySpan<byte> read, int asked)
        {
            _read += read.Length;
            if (_read - _reported >= 1 << 20)
            {
                _reported = _read;
                progress.Report(new CopyProgress(blob, _read, stage));
            }

            return read.Length;
        }
    }
}
