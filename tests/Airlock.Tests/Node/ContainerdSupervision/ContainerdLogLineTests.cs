using Airlock.Node.ContainerdSupervision;
using Microsoft.Extensions.Logging;

namespace Airlock.Tests.Node.ContainerdSupervision;

public sealed class ContainerdLogLineTests
{
    [Fact]
    public void A_logfmt_line_gives_its_level_message_and_other_fields_with_go_escapes_undone()
    {
        var line = ContainerdLogLine.Parse(
            "time=\"2026-11-23T19:18:42.1Z\" level=warning msg=\"failed to load plugin \\\"x\\\"\" error=\"devmapper not configured\" type=io.containerd.snapshotter.v1");

        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.Equal("failed to load plugin \"x\"", line.Message);
        Assert.Equal(
            [new("error", "devmapper not configured"), new("type", "io.containerd.snapshotter.v1")],
            line.Fields);
        Assert.Contains(new KeyValuePair<string, object?>("Message", "failed to load plugin \"x\""), line);
        Assert.Equal("containerd: failed to load plugin \"x\" error=devmapper not configured type=io.containerd.snapshotter.v1", line.ToString());
    }

    [Theory]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("info", LogLevel.Information)]
    [InlineData("error", LogLevel.Error)]
    [InlineData("fatal", LogLevel.Critical)]
    [InlineData("panic", LogLevel.Critical)]
    public void Logrus_levels_map_to_ILogger_levels(string level, LogLevel expected) =>
        Assert.Equal(expected, ContainerdLogLine.Parse($"time=\"t\" level={level} msg=m").Level);

    [Theory]
    [InlineData("panic: runtime error: invalid memory address")]
    [InlineData("goroutine 1 [running]:")]
    [InlineData("level=info msg=\"unterminated")]
    public void A_line_that_is_not_logfmt_is_kept_whole_at_information(string raw)
    {
        var line = ContainerdLogLine.Parse(raw);

        Assert.Equal(LogLevel.Information, line.Level);
        Assert.Equal(raw, line.Message);
        Assert.Empty(line.Fields);
    }

    [Theory]
    [InlineData("time=\"t\" level=info msg=\"loading plugin \\\"io.containerd.content.v1.content\\\"...\" type=io.containerd.content.v1")]
    [InlineData("time=\"t\" level=info msg=\"loading plugin\" id=io.containerd.content.v1.content type=io.containerd.content.v1")]
    [InlineData("time=\"t\" level=info msg=\"skip loading plugin \\\"io.containerd.snapshotter.v1.btrfs\\\"...\" error=\"no btrfs\"")]
    [InlineData("time=\"t\" level=info msg=\"skip plugin\" id=io.containerd.snapshotter.v1.zfs error=\"no zfs\"")]
    public void Containerds_per_plugin_start_up_lines_are_debug(string raw) =>
        Assert.Equal(LogLevel.Debug, ContainerdLogLine.Parse(raw).Level);

    [Fact]
    public void Other_info_lines_and_plugin_failures_keep_their_level()
    {
        Assert.Equal(LogLevel.Information, ContainerdLogLine.Parse("time=\"t\" level=info msg=\"containerd successfully booted in 0.05s\"").Level);
        Assert.Equal(LogLevel.Warning, ContainerdLogLine.Parse("time=\"t\" level=warning msg=\"loading plugin failed\"").Level);
    }
}
