using System.Collections;
using Airlock.Bundles;
using Airlock.Cli.Commands;
using Airlock.Cli.Hosting;
using Airlock.Node.Preflight;
using Airlock.Oci;
using Airlock.Tests.Node.ImagesDirectory;

namespace Airlock.Tests.Cli;

/// <summary>What people read: JSON without \uXXXX for ordinary characters, tables with headers, progress with speed and time left.</summary>
public sealed class OutputTests
{
    [Fact]
    public void Json_keeps_plus_quotes_and_angle_brackets_readable()
    {
        IReadOnlyList<CliInventoryRow> rows = [new("app:1.0+k3s1", "sha256:abc", "application/vnd.oci.image.index.v1+json", ["linux/amd64"], 1)];
        IReadOnlyList<CheckResult> checks = [new("node-label", CheckStatus.Fail, "label \"a<b\" & 'c'", null)];
        var output = new StringWriter();
        DataOutput.Write(output, "json", rows, CliJson.Default.IReadOnlyListCliInventoryRow);
        DataOutput.Write(output, "json", checks, CliJson.Default.IReadOnlyListCheckResult);
        var text = output.ToString();

        Assert.Contains("\"app:1.0+k3s1\"", text, StringComparison.Ordinal);
        Assert.Contains("\"application/vnd.oci.image.index.v1+json\"", text, StringComparison.Ordinal);
        Assert.Contains("label \\\"a<b\\\" & 'c'", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\\u00", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Output_table_prints_a_header_above_aligned_rows()
    {
        var manifest = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(manifest, "kind: Pod\nspec: { containers: [{ image: b:1 }, { image: a:1 }] }\n");
            var output = new StringWriter();
            Assert.Equal(0, await AirlockCli.RunAsync(["images", "list", manifest, "--output", "table"], new Hashtable(), output, new StringWriter()));
            Assert.Equal("IMAGE\na:1\nb:1\n", output.ToString().ReplaceLineEndings("\n"));
        }
        finally
        {
            File.Delete(manifest);
        }
    }

    [Fact]
    public void Plain_progress_lines_give_each_blob_its_speed_and_a_total_with_time_left()
    {
        var time = new ManualTimeProvider();
        var output = new StringWriter();
        var progress = TransferProgress.PlainLines(output, time);
        var a = Blob(1, 8 << 20);
        var b = Blob(2, 8 << 20);

        progress.Report(new CopyProgress(a, 0, CopyStage.Planned));
        progress.Report(new CopyProgress(b, 0, CopyStage.Planned));
        progress.Report(new CopyProgress(a, 0, CopyStage.Started));
        time.Advance(TimeSpan.FromSeconds(2));
        progress.Report(new CopyProgress(a, a.Size, CopyStage.Completed));
        time.Advance(TimeSpan.FromSeconds(4));
        progress.Report(new CopyProgress(b, 4 << 20, CopyStage.Transferring));

        var lines = output.ToString().ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"Copying blob {a.Digest} (8388608 bytes)", lines[0]);
        Assert.Equal($"Wrote blob {a.Digest} (8.0 MiB in 2.0s, 4.0 MiB/s)", lines[1]);
        // 12 of 16 MiB in 6 s: 2 MiB/s, 4 MiB left, about 2 s.
        Assert.Equal("Progress: 12.0 MiB of 16.0 MiB (75%), 2.0 MiB/s, about 2.0s left", lines[2]);
    }

    private static Descriptor Blob(byte seed, long size) =>
        new() { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Sha256([seed]), Size = size };
}
