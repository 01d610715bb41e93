using Airlock.Content;
using Airlock.Oci;

namespace Airlock.Bundles;

public static partial class ImageGraph
{
    /// <summary>
    /// The walk into an <see cref="ISequentialImageTarget"/>. First the plan: the manifests are read (they are
    /// small) and every step listed in the order the general walk writes in — a manifest's config and layers in
    /// document order, then the manifest; an index's manifests in document order, then the index; referrers after
    /// their subject — each digest once and nothing the target already has, so the same graph always gives the
    /// same sequence. Then the blobs are written in that order: the one whose turn it is streams straight from the
    /// source if it was not fetched yet, while the next ones (up to <c>Parallelism - 1</c> and
    /// <see cref="CopyOptions.DownloadAheadBytes"/>) download into verified <see cref="BlobSpool"/>s, so the
    /// network and the registry work while the target writes. Several graphs planned into one sequence
    /// (<see cref="CopyAllAsync"/>) share the window, so downloads run ahead across images too. A failed download ends the copy at once (the others
    /// are cancelled and their spools freed) with that download's error.
    /// </summary>
    private sealed class SequentialCopy(ISequentialImageTarget target, CopyOptions limits, IProgress<CopyProgress>? progress)
    {
        private readonly List<Step> _steps = [];
        private readonly HashSet<Digest> _planned = [];

        /// <summary>Adds the graph under <paramref name="root"/> (whose bytes are <paramref name="content"/>) to the sequence.</summary>
        public Task PlanAsync(IImageSource source, Descriptor root, ReadOnlyMemory<byte> content, CopyOptions options, CancellationToken cancellationToken) =>
            PlanManifestAsync(source, options, root, content, options.Reference, cancellationToken);

        private async Task PlanManifestAsync(IImageSource source, CopyOptions options, Descriptor manifest, ReadOnlyMemory<byte>? content, string? reference,
            CancellationToken cancellationToken)
        {
            _planned.Add(manifest.Digest);
            content ??= await source.ReadManifestAsync(manifest, cancellationToken).ConfigureAwait(false);
            var document = ManifestDocument.Parse(content.Value.Span, manifest.MediaType);
            if (document.IsIndex)
            {
                foreach (var child in document.Manifests)
                {
                    await PlanChildManifestAsync(source, options, child, cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                foreach (var blob in document.Children.Where(IsDistributable))
                {
                    if (!_planned.Add(blob.Digest))
                    {
                        continue;
                    }

                    if (await target.HasBlobAsync(blob, cancellationToken).ConfigureAwait(false))
                    {
                        progress?.Report(new CopyProgress(blob, 0, CopyStage.Skipped));
                        continue;
                    }

                    _steps.Add(new Step(source, blob, null, null));
                    progress?.Report(new CopyProgress(blob, 0, CopyStage.Planned));
                }
            }

            _steps.Add(new Step(source, manifest, content, reference));
            if (options.Referrers is { } referrers)
            {
                foreach (var referrer in await referrers(manifest, cancellationToken).ConfigureAwait(false))
                {
                    await PlanChildManifestAsync(source, options, referrer, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        private async Task PlanChildManifestAsync(IImageSource source, CopyOptions options, Descriptor manifest, CancellationToken cancellationToken)
        {
            if (_planned.Contains(manifest.Digest))
            {
                return;
            }

            // A target holding a manifest holds its graph: it was written children first.
            if (await target.HasManifestAsync(manifest, cancellationToken).ConfigureAwait(false))
            {
                _planned.Add(manifest.Digest);
                progress?.Report(new CopyProgress(manifest, 0, CopyStage.Skipped));
                return;
            }

            await PlanManifestAsync(source, options, manifest, null, null, cancellationToken).ConfigureAwait(false);
        }

        /// <summary>Writes the planned sequence, downloading ahead.</summary>
        public async Task RunAsync(CancellationToken cancellationToken)
        {
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var ahead = new Dictionary<int, Task<BlobSpool>>();
            var aheadBytes = 0L;
            var next = 0;
            try
            {
                for (var i = 0; i < _steps.Count; i++)
                {
                    var step = _steps[i];
                    if (step.Manifest is { } manifest)
                    {
                        await target.WriteManifestAsync(step.Descriptor, manifest, step.Reference, failed.Token).ConfigureAwait(false);
                        progress?.Report(new CopyProgress(step.Descriptor, step.Descriptor.Size, CopyStage.Completed));
                        continue;
                    }

                    ahead.Remove(i, out var spooling);
                    if (spooling is not null)
                    {
                        aheadBytes -= step.Descriptor.Size;
                    }

                    // Top up the blobs downloading ahead, in plan order so the window always holds the next ones.
                    for (next = Math.Max(next, i + 1); next < _steps.Count && ahead.Count < limits.Parallelism - 1; next++)
                    {
                        var blob = _steps[next];
                        if (blob.Manifest is not null)
                        {
                            continue;
                        }

                        if (ahead.Count > 0 && aheadBytes + blob.Descriptor.Size > limits.DownloadAheadBytes)
                        {
                            break;
                        }

                        ahead[next] = DownloadAsync(blob.Source, blob.Descriptor, failed);
                        aheadBytes += blob.Descriptor.Size;
                    }

                    if (spooling is null)
                    {
                        await StreamBlobAsync(step.Source, step.Descriptor, failed.Token).ConfigureAwait(false);
                    }
                    else
                    {
                        using var spool = await spooling.ConfigureAwait(false);
                        // Counted again as it goes into the target: with compression, writing is the slow part.
                        var content = Counted(spool.OpenRead(), step.Descriptor, progress, CopyStage.Transferring);
                        await using (content.ConfigureAwait(false))
                        {
                            await target.WriteBlobAsync(step.Descriptor, content, failed.Token).ConfigureAwait(false);
                        }
                    }

                    progress?.Report(new CopyProgress(step.Descriptor, step.Descriptor.Size, CopyStage.Completed));
                }
            }
            catch (Exception ex)
            {
                await failed.CancelAsync().ConfigureAwait(false);
                var first = await DrainAsync(ahead.OrderBy(a => a.Key).Select(a => a.Value)).ConfigureAwait(false);
                if (first is not null && ex is OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    // A download ahead failed and cancelled the rest: its error is the one to report.
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
                }

                throw;
            }
        }

        /// <summary>Waits for every download ahead to end and frees its spool; returns the first error that is not a cancellation.</summary>
        private static async Task<Exception?> DrainAsync(IEnumerable<Task<BlobSpool>> downloads)
        {
            Exception? first = null;
            foreach (var download in downloads.ToList())
            {
                try
                {
                    (await download.ConfigureAwait(false)).Dispose();
                }
                catch (OperationCanceledException)
                {
                }
                catch (Exception ex)
                {
                    first ??= ex;
                }
            }

            return first;
        }

        private async Task<BlobSpool> DownloadAsync(IImageSource source, Descriptor blob, CancellationTokenSource failed)
        {
            try
            {
                var content = await OpenCountedAsync(source, blob, progress, failed.Token, CopyStage.Fetching).ConfigureAwait(false);
                await using (content.ConfigureAwait(false))
                {
                    return await BlobSpool.WriteAsync(target.SpoolDirectory, blob, content, failed.Token).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Stop the whole copy now rather than when this blob's turn comes.
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }

        private async Task StreamBlobAsync(IImageSource source, Descriptor blob, CancellationToken cancellationToken)
        {
            var content = await OpenCountedAsync(source, blob, progress, cancellationToken).ConfigureAwait(false);
            await using (content.ConfigureAwait(false))
            {
                await target.WriteBlobAsync(blob, content, cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>A blob to write (no <see cref="Manifest"/> bytes) or a manifest with its bytes and the name to store it under.</summary>
        private sealed record Step(IImageSource Source, Descriptor Descriptor, ReadOnlyMemory<byte>? Manifest, string? Reference);
    }
}
