using Airlock.Bundles.Archive;
using Airlock.Bundles.Layout;
using Airlock.Content;
using Airlock.Distribution;
using Airlock.Oci;

namespace Airlock.Bundles.Transfer;

/// <summary>One image moved: from where, to where, and the root written.</summary>
public sealed record TransferResult(string Source, string Destination, Descriptor Root);

/// <summary>Settings shared by save, load, copy and export.</summary>
public sealed record TransferOptions
{
    public int Parallelism { get; init; } = 4;

    /// <summary>Platforms to keep (<c>null</c>: all).</summary>
    public IReadOnlyList<Platform>? Platforms { get; init; }

    public ArchiveLimits Limits { get; init; } = new();

    /// <summary>
    /// Also copy the artifacts (signatures, SBOMs) that refer to every copied manifest — from a registry's
    /// referrers API, or a layout's or archive's <c>index.json</c> entries with a subject. In a layout or an
    /// archive they are written as unnamed <c>index.json</c> entries, which <c>images load</c> pushes with their subject.
    /// </summary>
    public bool IncludeReferrers { get; init; }

    /// <summary>
    /// Save and copy into an archive or layout: the name the (one) image is written under instead of its source's —
    /// the name nodes will ask for (<c>docker.io/rancher/…</c>), not a staging registry's.
    /// </summary>
    public string? Name { get; init; }

    /// <summary>Save and copy into an archive or layout: <c>FROM=TO</c> name prefix rewrites of the names written (see <see cref="LoadNaming.ParseRewrites"/>).</summary>
    public IReadOnlyList<string> Rewrites { get; init; } = [];
}

/// <summary>
/// The image verbs — save, load, copy, export — as compositions of sources, targets and
/// <see cref="ImageGraph.CopyAsync"/>. Registries are reached through a <see cref="RegistryConnector"/>.
/// </summary>
public sealed class ImageTransfer(RegistryConnector? registry)
{
    /// <summary>
    /// Saves images into one archive file; shared blobs are stored once. The images are written as one sequence
    /// (<see cref="ImageGraph.CopyAllAsync"/>), so the next image downloads while one is written.
    /// </summary>
    public async Task<IReadOnlyList<TransferResult>> SaveAsync(IReadOnlyList<string> images, string output, ArchiveFormat format,
        ArchiveCompression? compression, TransferOptions options, IProgress<CopyProgress>? progress, CancellationToken cancellationToken)
    {
        var target = ArchiveTarget.Create(output, format, compression);
        await using (target.ConfigureAwait(false))
        {
            return await SaveAsync(images, target, options, progress, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Saves images into <paramref name="target"/> (a file, or a stream such as stdout) and completes it.</summary>
    public async Task<IReadOnlyList<TransferResult>> SaveAsync(IReadOnlyList<string> images, ArchiveTarget target, TransferOptions options,
        IProgress<CopyProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Name is not null && images.Count != 1)
        {
            throw new ArgumentException($"a name can be given to one image only, not to {images.Count}", nameof(options));
        }

        var rules = LoadNaming.ParseRewrites(options.Rewrites);
        var output = target.Path;
        var sources = new List<IImageSource>();
        try
        {
            var copies = new List<GraphCopy>();
            var names = new List<(string Source, string Name)>();
            var referrers = new List<Descriptor>();
            foreach (var image in images)
            {
                var location = ImageLocation.ParseOrRegistry(image);
                var source = await OpenSourceAsync(location, options, cancellationToken).ConfigureAwait(false);
                sources.Add(source);
                var root = await source.ResolveAsync(SourceReference(location), cancellationToken).ConfigureAwait(false);
                var name = LoadNaming.ArchiveName(options.Name, location.Image?.ToString() ?? location.Reference ?? OciLayoutStore.NameOf(root), rules);
                copies.Add(new GraphCopy(source, root, CopyOptionsFor(options, name, source, referrers)));
                names.Add((location.ToString(), $"{output}:{name}"));
            }

            var written = await ImageGraph.CopyAllAsync(copies, target, progress, cancellationToken).ConfigureAwait(false);
            await AddReferrerEntriesAsync(target, referrers, cancellationToken).ConfigureAwait(false);
            await target.CompleteAsync(cancellationToken).ConfigureAwait(false);
            return names.Zip(written, (n, root) => new TransferResult(n.Source, n.Name, root)).ToList();
        }
        finally
        {
            foreach (var source in sources)
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Pushes every named image of the archives to <paramref name="destination"/> (<c>REGISTRY[/PREFIX]</c>),
    /// renamed by <see cref="LoadNaming.Rename"/>; manifests go only after all their blobs.
    /// </summary>
    public async Task<IReadOnlyList<TransferResult>> LoadAsync(IReadOnlyList<string> archives, string destination, IReadOnlyList<string> rewrites,
        TransferOptions options, IProgress<CopyProgress>? progress, CancellationToken cancellationToken)
    {
        var connector = RequireRegistry();
        var rules = LoadNaming.ParseRewrites(rewrites);
        var results = new List<TransferResult>();
        foreach (var path in archives)
        {
            var loaded = new List<(string Registry, LoadedImage Image)>();
            var source = await ArchiveSource.OpenAsync(path, options.Limits, cancellationToken).ConfigureAwait(false);
            await using (source.ConfigureAwait(false))
            {
                foreach (var entry in source.Entries)
                {
                    if (OciLayoutStore.NameOf(entry) is null && await source.IsReferrerAsync(entry, cancellationToken).ConfigureAwait(false))
                    {
                        continue; // pushed with its subject
                    }

                    var name = OciLayoutStore.NameOf(entry);
                    var renamed = LoadNaming.Destination(path, entry, destination, rules);
                    var target = connector.OpenTarget(renamed);
                    await using (target.ConfigureAwait(false))
                    {
                        // The referrers an archive carries are part of what was saved, so they are always pushed.
                        var written = await ImageGraph.CopyAsync(source, target, entry,
                            CopyOptionsFor(options with { IncludeReferrers = true }, renamed.Tag ?? renamed.Digest?.ToString(), source, null),
                            progress, cancellationToken).ConfigureAwait(false);
                        results.Add(new TransferResult(name is null ? $"{path}@{entry.Digest}" : $"{path}:{name}", renamed.ToString(), written));
                        loaded.Add((renamed.Registry, new LoadedImage(renamed.Repository, renamed.Tag, written.Digest.ToString(), written.MediaType, name)));
                    }
                }
            }

            await ReportLoadAsync(connector, Path.GetFileName(path), loaded, cancellationToken).ConfigureAwait(false);
        }

        return results;
    }

    /// <summary>One record per registry of what an archive brought into it; a failure to record never fails the load.</summary>
    private static async Task ReportLoadAsync(RegistryConnector connector, string file, List<(string Registry, LoadedImage Image)> loaded, CancellationToken cancellationToken)
    {
        if (connector.ReportLoad is not { } report)
        {
            return;
        }

        foreach (var group in loaded.GroupBy(l => l.Registry, StringComparer.OrdinalIgnoreCase))
        {
            try
            {
                await report(group.Key, new LoadReport(file, [.. group.Select(l => l.Image)]), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The connector reports its own failures; the images are loaded whatever happened here.
            }
        }
    }

    /// <summary>Copies one image between any two locations.</summary>
    public async Task<TransferResult> CopyAsync(ImageLocation from, ImageLocation to, TransferOptions options, IProgress<CopyProgress>? progress,
        CancellationToken cancellationToken)
    {
        var source = await OpenSourceAsync(from, options, cancellationToken).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            var root = await source.ResolveAsync(SourceReference(from), cancellationToken).ConfigureAwait(false);
            var name = to.Transport == ImageTransport.Docker
                ? to.Image!.Tag
                : LoadNaming.ArchiveName(options.Name, to.Reference ?? from.Image?.ToString() ?? from.Reference ?? OciLayoutStore.NameOf(root),
                    LoadNaming.ParseRewrites(options.Rewrites));
            var target = OpenTarget(to);
            await using (target.ConfigureAwait(false))
            {
                var referrers = new List<Descriptor>();
                var written = await ImageGraph.CopyAsync(source, target, root, CopyOptionsFor(options, name, source, referrers), progress, cancellationToken)
                    .ConfigureAwait(false);
                await AddReferrerEntriesAsync(target, referrers, cancellationToken).ConfigureAwait(false);
                if (target is ArchiveTarget archive)
                {
                    await archive.CompleteAsync(cancellationToken).ConfigureAwait(false);
                }

                return new TransferResult(from.ToString(), to.ToString(), written);
            }
        }
    }

    /// <summary>
    /// Writes one image for one platform as a docker archive whose only name is <paramref name="name"/>, so
    /// <c>ctr images import</c> (and the images directory) create exactly that image.
    /// </summary>
    public async Task<TransferResult> ExportAsync(string image, string output, Platform platform, string name, ArchiveCompression? compression,
        TransferOptions options, IProgress<CopyProgress>? progress, CancellationToken cancellationToken)
    {
        var target = ArchiveTarget.Create(output, ArchiveFormat.DockerArchive, compression);
        await using (target.ConfigureAwait(false))
        {
            return await ExportAsync(image, target, platform, name, options, progress, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Exports one image for one platform into <paramref name="target"/> (a file, or a stream such as stdout) and completes it.</summary>
    public async Task<TransferResult> ExportAsync(string image, ArchiveTarget target, Platform platform, string name,
        TransferOptions options, IProgress<CopyProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (!ImageReference.TryParse(name, out var reference, out var error))
        {
            throw new FormatException(error);
        }

        var to = new ImageLocation(ImageTransport.DockerArchive, target.Path, reference.ToString());
        var from = ImageLocation.ParseOrRegistry(image);
        var source = await OpenSourceAsync(from, options, cancellationToken).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            var root = await source.ResolveAsync(SourceReference(from), cancellationToken).ConfigureAwait(false);
            if (MediaTypes.IsImageManifest(root.MediaType))
            {
                // A lone image manifest names its platform only in its config; exporting it as another is a mistake.
                var document = ManifestDocument.Parse((await source.ReadManifestAsync(root, cancellationToken).ConfigureAwait(false)).Span, root.MediaType);
                if (document.Config is { } config && await ArchiveInventory.PlatformOfConfigAsync(source, config, cancellationToken).ConfigureAwait(false) is { } actual
                    && !platform.Matches(actual))
                {
                    throw new ImageNotFoundException($"{from} is an image for {actual}, not {platform}");
                }
            }

            var written = await ImageGraph.CopyAsync(source, target, root,
                CopyOptionsFor(options with { Platforms = [platform], IncludeReferrers = false }, reference.ToString(), source, null), progress, cancellationToken)
                .ConfigureAwait(false);
            if (!MediaTypes.IsImageManifest(written.MediaType))
            {
                throw new ImageNotFoundException($"{from}: no single image for {platform}");
            }

            await target.CompleteAsync(cancellationToken).ConfigureAwait(false);
            return new TransferResult(from.ToString(), to.ToString(), written);
        }
    }

    /// <summary>Opens a location for reading; archives are spooled and checked first.</summary>
    public async Task<IImageSource> OpenSourceAsync(ImageLocation location, TransferOptions options, CancellationToken cancellationToken) =>
        location.Transport switch
        {
            ImageTransport.Docker => RequireRegistry().OpenSource(location.Image!),
            ImageTransport.OciLayout => OciLayoutStore.Open(location.Path!),
            _ => await ArchiveSource.OpenAsync(location.Path!, options.Limits, cancellationToken).ConfigureAwait(false),
        };

    /// <summary>Opens a location for writing; an archive target must be completed (see <see cref="ArchiveTarget.CompleteAsync"/>).</summary>
    public IImageTarget OpenTarget(ImageLocation location) => location.Transport switch
    {
        ImageTransport.Docker => RequireRegistry().OpenTarget(location.Image!),
        ImageTransport.OciLayout => OciLayoutStore.Create(location.Path!),
        ImageTransport.OciArchive => ArchiveTarget.Create(location.Path!, ArchiveFormat.OciLayout),
        _ => ArchiveTarget.Create(location.Path!, ArchiveFormat.DockerArchive),
    };

    private static string SourceReference(ImageLocation location) =>
        location.Transport == ImageTransport.Docker ? location.Image!.Identifier : location.Reference ?? string.Empty;

    /// <summary>The graph copy's options; referrers found are added to <paramref name="referrersFound"/> when given.</summary>
    private static CopyOptions CopyOptionsFor(TransferOptions options, string? reference, IImageSource source, List<Descriptor>? referrersFound)
    {
        Func<Descriptor, CancellationToken, ValueTask<IReadOnlyList<Descriptor>>>? referrers = null;
        if (options.IncludeReferrers && source is IReferrerSource listing)
        {
            referrers = async (subject, cancellationToken) =>
            {
                var found = await listing.ReferrersAsync(subject, cancellationToken).ConfigureAwait(false);
                if (referrersFound is not null)
                {
                    lock (referrersFound)
                    {
                        referrersFound.AddRange(found);
                    }
                }

                return found;
            };
        }

        return new() { Parallelism = options.Parallelism, Platforms = options.Platforms, Reference = reference, Referrers = referrers };
    }

    /// <summary>A layout or archive lists copied referrers as unnamed <c>index.json</c> entries, so readers (and <c>images load</c>) find them.</summary>
    private static async Task AddReferrerEntriesAsync(IImageTarget target, List<Descriptor> referrers, CancellationToken cancellationToken)
    {
        foreach (var referrer in referrers.DistinctBy(r => r.Digest))
        {
            var entry = new Descriptor { MediaType = referrer.MediaType, Digest = referrer.Digest, Size = referrer.Size, ArtifactType = referrer.ArtifactType };
            switch (target)
            {
                case OciLayoutStore layout:
                    await layout.AddEntryAsync(entry, cancellationToken).ConfigureAwait(false);
                    break;
                case ArchiveTarget archive:
                    archive.AddEntry(entry);
                    break;
            }
        }
    }

    private RegistryConnector RequireRegistry() =>
        registry ?? throw new NotSupportedException("registry access (docker://) is not available in this build: no registry client is connected");
}

/// <summary>How <c>images load</c> names images in the destination registry.</summary>
public static class LoadNaming
{
    /// <summary>Parses <c>FROM=TO</c> rules (name prefixes, e.g. <c>docker.io/rancher=registry.local/rancher</c>).</summary>
    public static IReadOnlyList<(string From, string To)> ParseRewrites(IReadOnlyList<string> rules) =>
        rules.Select(rule =>
        {
            var equals = rule.IndexOf('=', StringComparison.Ordinal);
            return equals <= 0 || equals == rule.Length - 1
                ? throw new FormatException($"rewrite \"{rule}\" is not of the form FROM=TO")
                : (rule[..equals].TrimEnd('/'), rule[(equals + 1)..].TrimEnd('/'));
        }).ToList();

    /// <summary>
    /// Where <c>images load</c> pushes one <c>index.json</c> entry of <paramref name="archive"/>: a full name is renamed
    /// by <see cref="Rename"/>; a bare tag (the OCI ref name skopeo's <c>oci-archive:FILE:TAG</c>, umoci and buildah
    /// write) goes to <paramref name="destination"/> itself when that names a repository (<c>REG/team/app</c> →
    /// <c>REG/team/app:TAG</c>). An entry with no usable name is refused, saying which flag gives it one.
    /// </summary>
    public static ImageReference Destination(string archive, Descriptor entry, string destination, IReadOnlyList<(string From, string To)> rewrites)
    {
        var name = OciLayoutStore.NameOf(entry);
        if (name is not null && OciLayoutStore.IsFullReference(name) && ImageReference.TryParse(name, out var reference))
        {
            return Rename(reference, destination, rewrites);
        }

        var target = destination.TrimEnd('/');
        if (name is not null && ImageReference.IsValidTag(name))
        {
            if (target.Contains('/', StringComparison.Ordinal) && ImageReference.TryParse(target, out var repository) && repository is { Tag: null, Digest: null })
            {
                return repository with { Tag = name };
            }

            throw new ImageNotFoundException($"{archive}: image {entry.Digest} is named only by the tag \"{name}\" (an OCI layout ref name, as "
                + $"skopeo's oci-archive:FILE:{name} writes it), which says nothing about its repository: load it with --to {target}/REPOSITORY "
                + $"to push it as {target}/REPOSITORY:{name}, or save it with --name REGISTRY/REPOSITORY:{name}");
        }

        throw new ImageNotFoundException(name is null
            ? $"{archive}: image {entry.Digest} has no name to load it under: save it with --name REGISTRY/REPOSITORY:TAG, "
                + $"or push it by digest with: airlock images copy oci-archive:{archive}:{entry.Digest} docker://{target}/REPOSITORY:TAG"
            : $"{archive}: image {entry.Digest} is named \"{name}\", which is not an image name: save it with --name REGISTRY/REPOSITORY:TAG");
    }

    /// <summary>
    /// The name an image is written under in an archive or layout: <paramref name="given"/> (<c>--name</c>, normalised
    /// as containerd names images) when set, else <paramref name="current"/> with the first matching rewrite applied
    /// (a bare tag or no name is kept as it is).
    /// </summary>
    public static string? ArchiveName(string? given, string? current, IReadOnlyList<(string From, string To)> rewrites)
    {
        if (given is not null)
        {
            return ImageReference.TryParse(given, out var named, out var error)
                ? named.ToString()
                : throw new FormatException($"--name \"{given}\" is not an image reference ({error})");
        }

        if (current is null || rewrites.Count == 0 || !OciLayoutStore.IsFullReference(current) || !ImageReference.TryParse(current, out var reference))
        {
            return current;
        }

        return Rewritten(reference, rewrites)?.ToString() ?? current;
    }

    /// <summary>
    /// The first rewrite whose FROM is a prefix of the image's <c>registry/repository</c> (at a path boundary)
    /// replaces that prefix; otherwise the registry host is replaced by <paramref name="destination"/>
    /// (<c>REGISTRY[/PREFIX]</c>) and the repository path kept:
    /// <c>docker.io/rancher/mirrored-pause:3.6</c> → <c>REGISTRY[/PREFIX]/rancher/mirrored-pause:3.6</c>.
    /// </summary>
    public static ImageReference Rename(ImageReference image, string destination, IReadOnlyList<(string From, string To)> rewrites) =>
        Rewritten(image, rewrites) ?? Reparse($"{destination.TrimEnd('/')}/{image.Repository}", image);

    /// <summary>The image renamed by the first rule whose FROM is a prefix of its name (at a path boundary); null when none is.</summary>
    private static ImageReference? Rewritten(ImageReference image, IReadOnlyList<(string From, string To)> rewrites)
    {
        var name = image.Name;
        foreach (var (from, to) in rewrites)
        {
            if (name == from || name.StartsWith(from + "/", StringComparison.Ordinal))
            {
                return Reparse(to + name[from.Length..], image);
            }
        }

        return null;
    }

    private static ImageReference Reparse(string name, ImageReference image)
    {
        if (!ImageReference.TryParse(name, out var parsed, out var error) || parsed.Tag is not null || parsed.Digest is not null)
        {
            throw new FormatException($"renaming {image} gives \"{name}\", which is not an image name ({error})");
        }

        return parsed with { Tag = image.Tag, Digest = image.Digest };
    }
}
