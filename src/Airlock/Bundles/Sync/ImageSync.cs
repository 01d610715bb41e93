using System.Net;
using Airlock.Oci;
using Airlock.Remote;
using Airlock.Tls;

namespace Airlock.Bundles.Sync;

/// <summary>What a sync did, or in check mode would do, to one image.</summary>
public enum SyncStatus
{
    /// <summary>The target already names the same digest; nothing was copied.</summary>
    UpToDate,

    /// <summary>Check mode: the target is missing or names another digest.</summary>
    WouldCopy,

    Copied,

    Failed,
}

/// <summary>One image of a sync pass: where from, where to, the digest the target has (or gets), and what happened.</summary>
public sealed record SyncResult(string Source, string Target, string? Digest, SyncStatus Status, string? Error = null);

/// <summary>
/// Runs the entries of a <see cref="SyncConfig"/> as regsync does: <c>image</c> copies one reference,
/// <c>repository</c> every tag the filter keeps, <c>registry</c> every repository of the catalog that way.
/// A tag whose target already has the source's digest is skipped after two HEADs; anything else goes through
/// the one graph walk (<see cref="ImageGraph.CopyAsync"/>), which mounts blobs within a registry. One
/// failing image is reported and the pass goes on with the rest.
/// </summary>
public sealed class ImageSync : IDisposable
{
    private readonly SyncConfig _config;
    private readonly RegistryClient _client;

    /// <param name="config">The parsed sync file.</param>
    /// <param name="options">Client settings from the command line (<c>--insecure</c>, <c>--creds</c>, <c>--registries</c>); the file's <c>creds</c> win per registry.</param>
    public ImageSync(SyncConfig config, RemoteOptions options)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(options);
        _config = config;
        _client = new RegistryClient(WithFileCreds(config, options));
    }

    /// <summary>The client settings with each <c>creds:</c> entry's login and TLS layered over <paramref name="options"/>.</summary>
    internal static RemoteOptions WithFileCreds(SyncConfig config, RemoteOptions options) =>
        RegistryHosts.Apply(options, config.Creds.Select(cred => new RegistryHostSettings
        {
            Registry = Host(cred.Registry),
            Credential = cred.User is not null || cred.Pass is not null ? new RegistryCredential(cred.User, cred.Pass) : null,
            Tls = cred.Tls == SyncTls.Insecure ? new TlsSettings { InsecureSkipVerify = true } : null,
            Endpoint = cred.Tls == SyncTls.Disabled ? new Uri($"http://{Host(cred.Registry)}/") : null,
        }));

    // regsync writes Docker Hub as docker.io but users also write index.docker.io or registry-1.docker.io.
    private static string Host(string registry) => ImageReference.TryParse($"{registry}/probe", out var probe) ? probe.Registry : registry;

    /// <summary>One pass over every entry. <paramref name="checkOnly"/> resolves digests but copies nothing.</summary>
    public async Task<IReadOnlyList<SyncResult>> RunAsync(bool checkOnly, IProgress<SyncResult>? progress, CancellationToken cancellationToken)
    {
        var pairs = new List<(ImageReference Source, ImageReference Target, SyncEntry Entry)>();
        var results = new List<SyncResult>();
        foreach (var entry in _config.Sync)
        {
            try
            {
                pairs.AddRange((await ExpandAsync(entry, cancellationToken).ConfigureAwait(false)).Select(p => (p.Source, p.Target, entry)));
            }
            catch (Exception e) when (e is RegistryException or HttpRequestException or IOException)
            {
                var failed = new SyncResult(entry.Source, entry.Target, null, SyncStatus.Failed, e.Message);
                results.Add(failed);
                progress?.Report(failed);
            }
        }

        using var slots = new SemaphoreSlim(_config.Parallel);
        var copies = pairs.Select(async pair =>
        {
            await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var result = await SyncOneAsync(pair.Source, pair.Target, pair.Entry, checkOnly, cancellationToken).ConfigureAwait(false);
                progress?.Report(result);
                return result;
            }
            finally
            {
                slots.Release();
            }
        }).ToList();
        results.AddRange(await Task.WhenAll(copies).ConfigureAwait(false));
        return results;
    }

    /// <summary>
    /// Passes every <see cref="SyncConfig.Interval"/> until cancelled (SIGTERM), handing each pass's results
    /// to <paramref name="onPass"/>. A pass that fails as a whole is reported the same way and the loop goes on.
    /// </summary>
    public async Task WatchAsync(bool checkOnly, IProgress<SyncResult>? progress, Func<IReadOnlyList<SyncResult>, Task> onPass,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onPass);
        while (!cancellationToken.IsCancellationRequested)
        {
            await onPass(await RunAsync(checkOnly, progress, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
            try
            {
                await Task.Delay(_config.Interval, _client.Options.TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<IReadOnlyList<(ImageReference Source, ImageReference Target)>> ExpandAsync(SyncEntry entry, CancellationToken cancellationToken)
    {
        switch (entry.Type)
        {
            case SyncType.Image:
                var source = ImageReference.Parse(entry.Source);
                var target = ImageReference.Parse(entry.Target);
                // A target without tag or digest takes the source's, as regsync does.
                if (target.Tag is null && target.Digest is null)
                {
                    target = target with { Tag = source.Tag ?? (source.Digest is null ? "latest" : null), Digest = source.Digest };
                }

                return [(source, target)];
            case SyncType.Repository:
                return await RepositoryPairsAsync(ImageReference.Parse(entry.Source), ImageReference.Parse(entry.Target), entry.Tags, cancellationToken)
                    .ConfigureAwait(false);
            default:
                var sourceHost = Host(entry.Source);
                var targetHost = Host(entry.Target);
                var pairs = new List<(ImageReference, ImageReference)>();
                foreach (var repository in await _client.CatalogAsync(sourceHost, cancellationToken).ConfigureAwait(false))
                {
                    pairs.AddRange(await RepositoryPairsAsync(
                        new ImageReference { Registry = sourceHost, Repository = repository },
                        new ImageReference { Registry = targetHost, Repository = repository },
                        entry.Tags, cancellationToken).ConfigureAwait(false));
                }

                return pairs;
        }
    }

    private async Task<IReadOnlyList<(ImageReference Source, ImageReference Target)>> RepositoryPairsAsync(ImageReference source, ImageReference target,
        TagFilter filter, CancellationToken cancellationToken)
    {
        var tags = await _client.ListTagsAsync(source, cancellationToken).ConfigureAwait(false);
        return tags.Where(filter.Matches).Order(StringComparer.Ordinal)
            .Select(tag => (source with { Tag = tag, Digest = null }, target with { Tag = tag, Digest = null }))
            .ToList();
    }

    private async Task<SyncResult> SyncOneAsync(ImageReference source, ImageReference target, SyncEntry entry, bool checkOnly,
        CancellationToken cancellationToken)
    {
        try
        {
            var sourceStore = RemoteImageStore.Create(source, _client);
            await using var sourceOwner = sourceStore.ConfigureAwait(false);
            var targetStore = RemoteImageStore.Create(target, _client);
            await using var targetOwner = targetStore.ConfigureAwait(false);
            var root = await _client.ResolveAsync(source, source.Identifier, cancellationToken).ConfigureAwait(false);
            // With platforms the target gets the selected manifest or a reduced index, so compare against that.
            var wanted = entry.Platforms is { Count: > 0 }
                ? (await ImageGraph.SelectPlatformsAsync(sourceStore, root, entry.Platforms, cancellationToken).ConfigureAwait(false)).Root.Digest
                : root.Digest;
            if (await TargetDigestAsync(target, cancellationToken).ConfigureAwait(false) == wanted)
            {
                return new SyncResult(source.ToString(), target.ToString(), wanted.ToString(), SyncStatus.UpToDate);
            }

            if (checkOnly)
            {
                return new SyncResult(source.ToString(), target.ToString(), wanted.ToString(), SyncStatus.WouldCopy);
            }

            var written = await ImageGraph.CopyAsync(sourceStore, targetStore, root,
                new CopyOptions { Platforms = entry.Platforms, Reference = target.Tag }, null, cancellationToken).ConfigureAwait(false);
            return new SyncResult(source.ToString(), target.ToString(), written.Digest.ToString(), SyncStatus.Copied);
        }
        // Any failure of one image (registry error, digest mismatch, missing platform) is that image's result;
        // the pass goes on with the others, as regsync does. Only cancellation ends the pass.
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new SyncResult(source.ToString(), target.ToString(), null, SyncStatus.Failed, e.Message);
        }
    }

    private async Task<Digest?> TargetDigestAsync(ImageReference target, CancellationToken cancellationToken)
    {
        try
        {
            return (await _client.ResolveAsync(target, target.Identifier, cancellationToken).ConfigureAwait(false)).Digest;
        }
        catch (RegistryException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public void Dispose() => _client.Dispose();
}
