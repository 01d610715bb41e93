using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;

namespace Airlock.Registry.Api;

/// <summary>
/// The bundles page's data: every <c>airlock images load</c> into this registry, as the loading client
/// reported it (<c>POST /api/v1/bundles</c>), checked against the store and kept in its history
/// (<see cref="IStoreHistory"/>), the newest <see cref="Capacity"/> of them.
/// </summary>
internal sealed class LoadHistory(IRegistryStore storage, TimeProvider time)
{
    public const int Capacity = IStoreHistory.LoadCapacity;
    private const int MaxFileName = 255;
    private const int MaxSource = 1024;

    /// <summary>Every problem that makes <paramref name="report"/> unfit to record, as the error to answer; null when it is fine.</summary>
    public async ValueTask<OciException?> CheckAsync(LoadReport report, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(report.File) || report.File.Length > MaxFileName || report.File.Contains('/', StringComparison.Ordinal) || report.File.Any(char.IsControl))
        {
            return new OciException(OciErrorCode.Unsupported, $"\"file\" must be a file name (no folders, at most {MaxFileName} characters)");
        }

        if (report.Images is not { Count: > 0 and <= ConsoleApi.MaxLoadRecordImages })
        {
            return new OciException(OciErrorCode.Unsupported, $"\"images\" must list 1 to {ConsoleApi.MaxLoadRecordImages} images");
        }

        foreach (var image in report.Images)
        {
            if (image is null || !ImageReference.IsValidRepository(image.Repository))
            {
                return new OciException(OciErrorCode.NameInvalid, $"repository \"{image?.Repository}\" is not a valid repository name");
            }

            if (image.Tag is not null && !ImageReference.IsValidTag(image.Tag))
            {
                return new OciException(OciErrorCode.TagInvalid, $"tag \"{image.Tag}\" of {image.Repository} is not a valid tag");
            }

            if (!Digest.TryParse(image.Digest, out var digest))
            {
                return new OciException(OciErrorCode.DigestInvalid, $"\"{image.Digest}\" of {image.Repository} is not a digest");
            }

            if (!MediaTypes.IsManifest(image.MediaType))
            {
                return new OciException(OciErrorCode.ManifestInvalid, $"\"{image.MediaType}\" of {image.Repository}@{image.Digest} is not a manifest media type");
            }

            if (image.Source is { } source && (source.Length > MaxSource || source.Any(char.IsControl)))
            {
                return new OciException(OciErrorCode.Unsupported, $"\"source\" of {image.Repository}@{image.Digest} is not a name (at most {MaxSource} characters, no control characters)");
            }

            // A record only of what is really here: the loaded manifest must be in the repository named.
            if (await storage.Repositories.ManifestMediaTypeAsync(image.Repository, digest, cancellationToken).ConfigureAwait(false) is null)
            {
                return new OciException(OciErrorCode.ManifestUnknown, $"{image.Repository} has no manifest {image.Digest}");
            }
        }

        return null;
    }

    public async ValueTask<LoadRecord> RecordAsync(LoadReport report, string? user, CancellationToken cancellationToken)
    {
        var record = new LoadRecord(Guid.NewGuid().ToString("N"), time.GetUtcNow(), user, report.File, report.Images);
        await storage.History.AddLoadAsync(record, cancellationToken).ConfigureAwait(false);
        return record;
    }

    /// <summary>The newest <paramref name="limit"/> records with an image <paramref name="visible"/> lets the user see, showing only those images.</summary>
    public async ValueTask<IReadOnlyList<LoadRecord>> ListAsync(Func<string, bool> visible, int limit, CancellationToken cancellationToken)
    {
        var records = await storage.History.ListLoadsAsync(cancellationToken).ConfigureAwait(false);
        var result = new List<LoadRecord>();
        for (var i = records.Count - 1; i >= 0 && result.Count < limit; i--)
        {
            var images = records[i].Images.Where(image => visible(image.Repository)).ToList();
            if (images.Count > 0)
            {
                result.Add(records[i] with { Images = images });
            }
        }

        return result;
    }
}
