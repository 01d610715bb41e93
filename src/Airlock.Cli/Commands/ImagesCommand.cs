using System.CommandLine;
using System.Text.Json;
using Airlock.Bundles;
using Airlock.Bundles.Archive;
using Airlock.Bundles.Kubernetes;
using Airlock.Bundles.Layout;
using Airlock.Bundles.Transfer;
using Airlock.Cli.Hosting;
using Airlock.Oci;
using Spectre.Console;

namespace Airlock.Cli.Commands;

/// <summary>
/// <c>airlock images save|load|copy|export|list</c>: moving images across the gap as files. Verbs that can
/// touch a registry take the shared <see cref="RegistryAccessOptions"/> flags; registries are opened only
/// when a reference needs one.
/// </summary>
internal static class ImagesCommand
{
    public static Command Create()
    {
        var command = new Command("images", "Move images across the air gap as files: save, load, copy, export and list them.")
            .WithExamples(
                "airlock images save -o images.tar.zst docker.io/rancher/mirrored-pause:3.6 docker.io/library/busybox:1.36",
                "airlock images load images.tar.zst --to registry.local:5000",
                "airlock images list deploy/ | airlock images save -o app.tar -",
                "airlock images copy oci:./layout:app docker-archive:app.tar:registry.local/app:1");
        command.Subcommands.Add(Save());
        command.Subcommands.Add(Load());
        command.Subcommands.Add(Copy());
        command.Subcommands.Add(Export());
        command.Subcommands.Add(List());
        command.Subcommands.Add(ImagesSyncCommand.Create());
        return command;
    }

    private static Option<bool> Quiet() => new("--quiet", "-q") { Description = "Print nothing but errors." };

    // Repeated or comma-separated; not several values per flag, which would swallow the positional arguments.
    private static Option<string[]> Platforms(string description) => new("--platform") { Description = description };

    private static Option<bool> AllPlatforms() => new("--all-platforms")
    {
        Description = "Keep every platform of a multi-arch image, its index unchanged (the default, as K3s imports them); overrides --platform, e.g. one set in config.yaml.",
    };

    private static Option<bool> IncludeReferrers() => new("--include-referrers")
    {
        Description = "Also copy the artifacts that refer to each copied manifest (signatures, SBOMs: the registry's referrers API, or subject entries of a layout/archive).",
    };

    private static Option<int> Parallelism() => new("--parallelism")
    {
        Description = "Blobs transferred at once.",
        DefaultValueFactory = _ => 4,
    };

    private static Option<long> MaxExpanded() => new("--max-expanded-bytes")
    {
        Description = "Refuse archives that expand to more than this many bytes (decompression bombs).",
        DefaultValueFactory = _ => new ArchiveLimits().MaxExpandedBytes,
    };

    private static Option<string?> OutputFile() => new("--output-file", "-o")
    {
        Description = "Archive to write; its extension chooses the compression (.tar, .tar.gz/.tgz, .tar.zst/.tzst, .tar.lz4, .tar.bz2/.tbz). "
            + "- (or no -o with stdout redirected) writes the archive to stdout, uncompressed unless --compress; progress and messages then go to stderr.",
    };

    private static Option<string?> Name(string description) => new("--name") { Description = description };

    private static Option<string[]> Rewrite(string description) => new("--rewrite") { Description = description };

    private const string StdoutName = "-";

    /// <summary>
    /// Where an archive goes: the file named by <c>-o</c>, or stdout for <c>-o -</c> (or no <c>-o</c> when stdout is not a
    /// terminal, as <c>regctl image export … &gt; pause.tar</c> and <c>docker save</c> do). An archive is never written to a terminal.
    /// </summary>
    private static string ArchiveOutput(ParseResult parseResult, Option<string?> output)
    {
        var path = parseResult.GetValue(output);
        if (path is null or StdoutName && ReferenceEquals(parseResult.InvocationConfiguration.Output, Console.Out) && !Console.IsOutputRedirected)
        {
            throw new UsageException("refusing to write an archive to a terminal: give -o FILE, or redirect stdout (-o - > images.tar)");
        }

        return path ?? StdoutName;
    }

    private static ArchiveTarget OpenArchive(string output, ArchiveFormat format, ArchiveCompression? compression) =>
        output == StdoutName ? ArchiveTarget.ToStream(Console.OpenStandardOutput(), "<stdout>", format, compression) : ArchiveTarget.Create(output, format, compression);

    private static Option<string> Compress()
    {
        var option = new Option<string>("--compress") { Description = "Compression: zstd, gzip, lz4, bzip2 or none (default: from the file name)." };
        option.AcceptOnlyFromAmong("zstd", "gzip", "lz4", "bzip2", "none");
        return option;
    }

    private static Command Save()
    {
        var images = new Argument<string[]>("images")
        {
            Description = "Images to save: registry references, or docker://, oci:DIR[:NAME], oci-archive:FILE, docker-archive:FILE locations; - reads them from stdin, one per line.",
            Arity = ArgumentArity.OneOrMore,
        };
        var output = OutputFile();
        var format = new Option<string>("--format")
        {
            Description = "docker-archive (an OCI layout with Docker's manifest.json too: docker/podman load, skopeo, ctr import, the K3s images directory all read it) or oci (OCI layout only).",
            DefaultValueFactory = _ => "docker-archive",
        };
        format.AcceptOnlyFromAmong("docker-archive", "oci");
        var compress = Compress();
        var platforms = Platforms("Keep only these platforms (os/arch[/variant], or local for this host; repeatable or comma-separated). Default: all. A subset of a multi-arch index is saved as a new index (new digest), or as the single matching image.");
        var allPlatforms = AllPlatforms();
        var referrers = IncludeReferrers();
        var parallelism = Parallelism();
        var quiet = Quiet();
        var name = Name("Name the (one) image gets in the archive — the name nodes will ask for, e.g. docker.io/rancher/mirrored-pause:3.6 when saving from a staging registry; "
            + "without it the source's name is kept (a bare tag such as an OCI layout's \"1\" says nothing about the repository: give --name).");
        var rewrite = Rewrite("FROM=TO name prefix rewrite of the names written into the archive (repeatable), e.g. staging.local:5000/rancher=docker.io/rancher.");
        var command = new Command("save", "Save images into one archive file; layers shared by images are stored once.")
            .WithExamples(
                "airlock images save -o images.tar docker.io/rancher/mirrored-pause:3.6",
                "airlock images save -o images.tar.zst --platform linux/amd64,linux/arm64 busybox:1.36",
                "airlock images save -o signed.tar --include-referrers registry.local:5000/app:1",
                "airlock images save -o app.tar --format oci oci:./layout:app",
                "airlock images save -o pause.tar --name ghcr.io/canonical/k8s-snap/pause:3.10 oci:./layout:1",
                "airlock images save -o - --platform local ghcr.io/canonical/k8s-snap/pause:3.10 > pause.tar",
                "airlock images list manifests/ | airlock images save -o app.tar.gz -");
        command.Arguments.Add(images);
        command.Options.Add(output);
        command.Options.Add(format);
        command.Options.Add(compress);
        command.Options.Add(platforms);
        command.Options.Add(allPlatforms);
        command.Options.Add(referrers);
        command.Options.Add(parallelism);
        command.Options.Add(quiet);
        command.Options.Add(name);
        command.Options.Add(rewrite);
        var access = RegistryAccessOptions.AddTo(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var sources = await ExpandStdinAsync(parseResult.GetValue(images)!, cancellationToken).ConfigureAwait(false);
            if (parseResult.GetValue(name) is not null && sources.Count != 1)
            {
                throw new UsageException($"--name names one image, but {sources.Count} are saved: save them one at a time, or rename with --rewrite FROM=TO");
            }

            var options = Options(parseResult, platforms, allPlatforms, parallelism, null) with
            {
                IncludeReferrers = parseResult.GetValue(referrers),
                Name = parseResult.GetValue(name),
                Rewrites = Rewrites(parseResult, rewrite),
            };
            var path = ArchiveOutput(parseResult, output);
            var target = OpenArchive(path, parseResult.GetValue(format) == "oci" ? ArchiveFormat.OciLayout : ArchiveFormat.DockerArchive,
                ParseCompression(parseResult.GetValue(compress)));
            await using (target.ConfigureAwait(false))
            {
                var results = await WithProgressAsync(parseResult, quiet, progress => new ImageTransfer(access.Connect(parseResult)).SaveAsync(sources, target,
                    options, progress, cancellationToken)).ConfigureAwait(false);
                PrintResults(parseResult, quiet, "Saved", results, path == StdoutName);
                WarnBareNames(parseResult, results, target.Path);
            }

            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command Load()
    {
        var files = new Argument<string[]>("files") { Description = "Archives to load (any format and compression save writes or docker/podman/skopeo/ctr write).", Arity = ArgumentArity.OneOrMore };
        var to = new Option<string>("--to")
        {
            Description = "Destination REGISTRY[/PREFIX]; the source registry host is replaced and the repository path kept (docker.io/rancher/pause:3.6 → REGISTRY[/PREFIX]/rancher/pause:3.6).",
            Required = true,
        };
        var rewrite = new Option<string[]>("--rewrite") { Description = "FROM=TO name prefix rewrite applied before the default rule (repeatable), e.g. docker.io/library=registry.local/hub." };
        var platforms = Platforms("Push only these platforms (os/arch[/variant], or local for this host; repeatable or comma-separated). Default: all.");
        var allPlatforms = AllPlatforms();
        var parallelism = Parallelism();
        var maxExpanded = MaxExpanded();
        var quiet = Quiet();
        var command = new Command("load", "Push the images of archive files to a registry; manifests are pushed only after all their blobs.")
            .WithExamples(
                "airlock images load images.tar.zst --to registry.local:5000",
                "airlock images load a.tar b.tar.gz --to registry.local:5000/mirror",
                "airlock images load images.tar --to registry.local --rewrite docker.io/library=registry.local/hub");
        command.Arguments.Add(files);
        command.Options.Add(to);
        command.Options.Add(rewrite);
        command.Options.Add(platforms);
        command.Options.Add(allPlatforms);
        command.Options.Add(parallelism);
        command.Options.Add(maxExpanded);
        command.Options.Add(quiet);
        var access = RegistryAccessOptions.AddTo(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var options = Options(parseResult, platforms, allPlatforms, parallelism, maxExpanded);
            var results = await WithProgressAsync(parseResult, quiet, progress => new ImageTransfer(access.Connect(parseResult)).LoadAsync(parseResult.GetValue(files)!,
                parseResult.GetValue(to)!, parseResult.GetValue(rewrite) ?? [], options, progress, cancellationToken)).ConfigureAwait(false);
            PrintResults(parseResult, quiet, "Loaded", results, false);
            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command Copy()
    {
        var source = new Argument<string>("source") { Description = "docker://REF, oci:DIR[:NAME], oci-archive:FILE[:NAME] or docker-archive:FILE[:REF]." };
        var destination = new Argument<string>("destination") { Description = "docker://REF, oci:DIR[:NAME], oci-archive:FILE[:NAME] or docker-archive:FILE[:REF]." };
        var platforms = Platforms("Copy only these platforms (os/arch[/variant], or local for this host; repeatable or comma-separated). Default: all.");
        var allPlatforms = AllPlatforms();
        var referrers = IncludeReferrers();
        var parallelism = Parallelism();
        var maxExpanded = MaxExpanded();
        var quiet = Quiet();
        var name = Name("Name the image gets in a destination archive or layout (default: the destination's :NAME, else the source's name).");
        var rewrite = Rewrite("FROM=TO name prefix rewrite of the name written into a destination archive or layout (repeatable).");
        var command = new Command("copy", "Copy one image between registries, OCI layouts and archives, keeping its digests.")
            .WithExamples(
                "airlock images copy docker://docker.io/library/busybox:1.36 oci:./layout:busybox",
                "airlock images copy oci:./layout:busybox docker-archive:busybox.tar:docker.io/library/busybox:1.36",
                "airlock images copy docker-archive:app.tar docker://registry.local:5000/app:1",
                "airlock images copy --name docker.io/library/busybox:1.36 oci-archive:busybox.tar:1 docker-archive:busybox-named.tar",
                "airlock images copy --include-referrers docker://registry.local:5000/app:1 docker://mirror.local:5000/app:1");
        command.Arguments.Add(source);
        command.Arguments.Add(destination);
        command.Options.Add(platforms);
        command.Options.Add(allPlatforms);
        command.Options.Add(referrers);
        command.Options.Add(parallelism);
        command.Options.Add(maxExpanded);
        command.Options.Add(quiet);
        command.Options.Add(name);
        command.Options.Add(rewrite);
        var access = RegistryAccessOptions.AddTo(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var from = ParseLocation(parseResult.GetValue(source)!);
            var to = ParseLocation(parseResult.GetValue(destination)!);
            var given = parseResult.GetValue(name);
            var rewrites = Rewrites(parseResult, rewrite);
            if (to.Transport == ImageTransport.Docker && (given is not null || rewrites.Count > 0))
            {
                throw new UsageException($"--name and --rewrite name the image inside an archive or layout; in a registry the destination {to} is its name");
            }

            if (given is not null && to.Reference is not null)
            {
                throw new UsageException($"the destination {to} already names the image; give the name there or with --name, not both");
            }

            var options = Options(parseResult, platforms, allPlatforms, parallelism, maxExpanded) with
            {
                IncludeReferrers = parseResult.GetValue(referrers),
                Name = given,
                Rewrites = rewrites,
            };
            var result = await WithProgressAsync(parseResult, quiet, progress => new ImageTransfer(access.Connect(parseResult)).CopyAsync(from, to, options, progress, cancellationToken))
                .ConfigureAwait(false);
            PrintResults(parseResult, quiet, "Copied", [result], false);
            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command Export()
    {
        var image = new Argument<string>("image") { Description = "Image to export: a registry reference or a transport-prefixed location." };
        var output = OutputFile();
        var platform = new Option<string>("--platform") { Description = "The one platform to export (os/arch[/variant], or local for this host's).", Required = true };
        var name = new Option<string>("--name") { Description = "Name the image gets when imported (ctr images import, the images directory); default: the image reference." };
        var compress = Compress();
        var quiet = Quiet();
        var command = new Command("export", "Write one image for one platform as an archive that ctr images import names --name.")
            .WithExamples(
                "airlock images export docker.io/rancher/mirrored-pause:3.6 --platform linux/arm64 -o pause.tar",
                "airlock images export oci:./layout:app --platform linux/amd64 --name registry.local/app:1 -o /var/lib/airlock/agent/images/app.tar.zst",
                "airlock images export ghcr.io/canonical/k8s-snap/pause:3.10 --name ghcr.io/canonical/k8s-snap/pause:3.10 --platform local > pause.tar");
        command.Arguments.Add(image);
        command.Options.Add(output);
        command.Options.Add(platform);
        command.Options.Add(name);
        command.Options.Add(compress);
        command.Options.Add(quiet);
        var access = RegistryAccessOptions.AddTo(command);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var source = parseResult.GetValue(image)!;
            var location = ImageLocation.ParseOrRegistry(source);
            var imageName = parseResult.GetValue(name) ?? location.Image?.ToString()
                ?? throw new UsageException("--name is required when the image is not a registry reference");
            var exportPlatform = ParsePlatform(parseResult.GetValue(platform)!);
            var path = ArchiveOutput(parseResult, output);
            var target = OpenArchive(path, ArchiveFormat.DockerArchive, ParseCompression(parseResult.GetValue(compress)));
            await using (target.ConfigureAwait(false))
            {
                var result = await WithProgressAsync(parseResult, quiet, progress => new ImageTransfer(access.Connect(parseResult)).ExportAsync(source, target,
                    exportPlatform, imageName, new TransferOptions(), progress, cancellationToken)).ConfigureAwait(false);
                PrintResults(parseResult, quiet, "Exported", [result], path == StdoutName);
            }

            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command List()
    {
        var paths = new Argument<string[]>("paths")
        {
            Description = "Kubernetes manifest files or directories (*.yaml, *.yml, *.json, recursively; K3s HelmChart resources' valuesContent too); - reads stdin. "
                + "An image archive or OCI layout directory given alone is listed as with --archive.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var archive = new PathOption("--archive", PathKind.FileOrDirectory, "List the images in this archive or OCI layout directory instead (name, digest, platforms, size).");
        var output = CommonOptions.Output("text");
        var maxExpanded = MaxExpanded();
        var command = new Command("list", "List the images Kubernetes manifests use (one per line, sorted), or the images in an archive.")
            .WithExamples(
                "airlock images list deploy/ > images.txt",
                "helm template ./chart | airlock images list -",
                "airlock images list /var/lib/rancher/k3s/server/manifests/   # HelmChart valuesContent included",
                "airlock images list images.tar.zst --output table",
                "airlock images list --archive images.tar.zst --output json");
        command.Arguments.Add(paths);
        command.Options.Add(archive);
        command.Options.Add(output);
        command.Options.Add(maxExpanded);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var writer = parseResult.InvocationConfiguration.Output;
            var format = parseResult.GetValue(output)!;
            var given = parseResult.GetValue(paths) ?? [];
            var archivePath = parseResult.GetValue(archive);
            if (archivePath is null && given.FirstOrDefault(IsImageArchive) is { } archiveFile)
            {
                archivePath = given.Length == 1
                    ? archiveFile
                    : throw new UsageException($"{archiveFile} is an image archive, not Kubernetes manifests: list it on its own (airlock images list {archiveFile}) or with --archive");
                given = [];
            }

            if (archivePath is not null)
            {
                if (given.Length > 0)
                {
                    throw new UsageException("give either manifest paths or --archive, not both");
                }

                var images = await ListArchiveAsync(archivePath, new ArchiveLimits { MaxExpandedBytes = parseResult.GetValue(maxExpanded) }, cancellationToken).ConfigureAwait(false);
                WriteInventory(writer, format, images);
                return AirlockCli.ExitOk;
            }

            var inputs = given.Length > 0 ? given : throw new UsageException("give Kubernetes manifest paths (or - for stdin), or --archive FILE");
            var found = await ManifestImages.FindAsync(inputs, Console.In, cancellationToken).ConfigureAwait(false);
            foreach (var warning in found.Warnings)
            {
                await parseResult.InvocationConfiguration.Error.WriteLineAsync($"airlock: warning: {warning}").ConfigureAwait(false);
            }

            if (format is "text")
            {
                foreach (var name in found.Images)
                {
                    await writer.WriteLineAsync(name).ConfigureAwait(false);
                }
            }
            else
            {
                DataOutput.Write(writer, format, found.Images, CliJson.Default.IReadOnlyListString, ("IMAGE", name => name));
            }

            return AirlockCli.ExitOk;
        });
        return command;
    }

    /// <summary>An archive file (recognised by its first bytes, whatever its name) or an OCI layout directory.</summary>
    private static bool IsImageArchive(string path) =>
        path != "-" && (File.Exists(path) ? ArchiveCodecs.IsArchiveFile(path) : OciLayoutStore.IsLayout(path));

    private static async Task<IReadOnlyList<InventoryImage>> ListArchiveAsync(string path, ArchiveLimits limits, CancellationToken cancellationToken)
    {
        if (Directory.Exists(path))
        {
            var layout = OciLayoutStore.Open(path);
            await using (layout.ConfigureAwait(false))
            {
                return await ArchiveInventory.ListAsync(layout, layout.Entries, cancellationToken).ConfigureAwait(false);
            }
        }

        var archive = await ArchiveSource.OpenAsync(path, limits, cancellationToken).ConfigureAwait(false);
        await using (archive.ConfigureAwait(false))
        {
            return await ArchiveInventory.ListAsync(archive, archive.Entries, cancellationToken).ConfigureAwait(false);
        }
    }

    private static void WriteInventory(TextWriter writer, string format, IReadOnlyList<InventoryImage> images)
    {
        if (format is "text")
        {
            foreach (var image in images)
            {
                writer.WriteLine($"{image.Name ?? "<none>"}\t{image.Digest}\t{string.Join(',', image.Platforms)}\t{image.Size}");
            }

            return;
        }

        DataOutput.Write(writer, format, images.Select(i => new CliInventoryRow(i.Name, i.Digest.ToString(), i.MediaType, i.Platforms, i.Size)).ToList(),
            CliJson.Default.IReadOnlyListCliInventoryRow,
            ("NAME", r => r.Name ?? "<none>"), ("DIGEST", r => r.Digest), ("PLATFORMS", r => string.Join(',', r.Platforms)),
            ("SIZE", r => TransferProgress.Bytes(r.Size)));
    }

    private static async Task<IReadOnlyList<string>> ExpandStdinAsync(string[] images, CancellationToken cancellationToken)
    {
        if (!images.Contains("-"))
        {
            return images;
        }

        var text = await Console.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        var fromStdin = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'));
        return images.Where(i => i != "-").Concat(fromStdin).ToList();
    }

    private static TransferOptions Options(ParseResult parseResult, Option<string[]> platforms, Option<bool> allPlatforms, Option<int> parallelism,
        Option<long>? maxExpanded)
    {
        var parallel = parseResult.GetValue(parallelism);
        if (parallel < 1)
        {
            throw new UsageException("--parallelism must be at least 1");
        }

        var values = (parseResult.GetValue(platforms) ?? []).SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        return new TransferOptions
        {
            Parallelism = parallel,
            // --all-platforms wins: it is how a command line overrides a platform list from config.yaml or AIRLOCK_PLATFORM.
            Platforms = values.Count == 0 || parseResult.GetValue(allPlatforms) ? null : values.Select(ParsePlatform).ToList(),
            Limits = maxExpanded is null ? new ArchiveLimits() : new ArchiveLimits { MaxExpandedBytes = parseResult.GetValue(maxExpanded) },
        };
    }

    /// <summary><c>os/arch[/variant]</c>, or <c>local</c> for this host's platform (regctl's spelling).</summary>
    private static Platform ParsePlatform(string value)
    {
        if (value == "local")
        {
            return Platform.Host;
        }

        try
        {
            return Platform.Parse(value);
        }
        catch (FormatException ex)
        {
            throw new UsageException(ex.Message);
        }
    }

    private static ImageLocation ParseLocation(string value)
    {
        try
        {
            return ImageLocation.Parse(value);
        }
        catch (FormatException ex)
        {
            throw new UsageException(ex.Message);
        }
    }

    private static ArchiveCompression? ParseCompression(string? value) => value is null ? null : ArchiveCodecs.Parse(value);

    /// <summary>Progress on stderr (bars on a terminal, plain lines otherwise), nothing with --quiet.</summary>
    private static Task<T> WithProgressAsync<T>(ParseResult parseResult, Option<bool> quiet, Func<IProgress<CopyProgress>?, Task<T>> run) =>
        TransferProgress.RunAsync(parseResult.InvocationConfiguration.Error, parseResult.GetValue(quiet), run);

    private static IReadOnlyList<string> Rewrites(ParseResult parseResult, Option<string[]> rewrite)
    {
        var rules = parseResult.GetValue(rewrite) ?? [];
        try
        {
            LoadNaming.ParseRewrites(rules);
        }
        catch (FormatException ex)
        {
            throw new UsageException(ex.Message);
        }

        return rules;
    }

    /// <summary>A name that is only a tag gives nodes and <c>images load</c> nothing to call the image: say so while it is easy to fix.</summary>
    private static void WarnBareNames(ParseResult parseResult, IEnumerable<TransferResult> results, string archive)
    {
        foreach (var result in results)
        {
            var name = result.Destination.StartsWith(archive + ":", StringComparison.Ordinal) ? result.Destination[(archive.Length + 1)..] : null;
            if (name is { Length: > 0 } && !OciLayoutStore.IsFullReference(name))
            {
                parseResult.InvocationConfiguration.Error.WriteLine(
                    $"airlock: warning: {result.Source} is saved under the bare tag \"{name}\", which names no repository: nodes cannot import it and "
                    + $"images load needs --to REGISTRY/REPOSITORY; save it with --name REGISTRY/REPOSITORY:{name} instead");
            }
        }
    }

    /// <summary>One line per image; on stderr when stdout carries the archive itself.</summary>
    private static void PrintResults(ParseResult parseResult, Option<bool> quiet, string verb, IEnumerable<TransferResult> results, bool stdoutCarriesData)
    {
        if (parseResult.GetValue(quiet))
        {
            return;
        }

        var writer = stdoutCarriesData ? parseResult.InvocationConfiguration.Error : parseResult.InvocationConfiguration.Output;
        foreach (var result in results)
        {
            writer.WriteLine($"{verb} {result.Source} -> {result.Destination} ({result.Root.Digest})");
        }
    }
}
