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
}
