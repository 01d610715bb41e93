using Airlock.GoCompat;

namespace Airlock.Tests.GoCompat;

public sealed class GoDurationTests
{
    [Theory]
    [InlineData("0", 0)]
    [InlineData("+0", 0)]
    [InlineData("-0", 0)]
    [InlineData("0s", 0)]
    [InlineData("90s", 90_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData(".5s", 500)]
    [InlineData("1.s", 1_000)]
    [InlineData("500ms", 500)]
    [InlineData("1m0.5s", 60_500)]
    [InlineData("2h45m30s", 9_930_000)]
    [InlineData("24h", 86_400_000)]
    [InlineData("10s", 10_000)]
    public void Parses_Go_durations(string text, long milliseconds)
    {
        Assert.True(GoDuration.TryParse(text, out var duration, out var error), error);
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), duration);
    }

    [Theory]
    [InlineData("1us", 10)]
    [InlineData("1µs", 10)]
    [InlineData("1μs", 10)]
    [InlineData("100ns", 1)]
    [InlineData("150ns", 1)]
    public void Parses_sub_millisecond_units_down_to_a_tick(string text, long ticks)
    {
        Assert.True(GoDuration.TryParse(text, out var duration));
        Assert.Equal(TimeSpan.FromTicks(ticks), duration);
    }

    [Theory]
    [InlineData("10", "has no unit: add a unit, e.g. 10s")] // TimeSpan.TryParse read this as 10 days
    [InlineData("1.5", "has no unit: add a unit, e.g. 1.5s")]
    [InlineData("1h30", "has no unit after \"30\"")]
    [InlineData("-1s", "is negative")]
    [InlineData("7d", "unknown unit \"d\"")]
    [InlineData("01:00:00", "is not a duration")]
    [InlineData("", "is not a duration")]
    [InlineData("s", "is not a duration")]
    [InlineData(".s", "is not a duration")]
    [InlineData("1..2s", "is not a duration")]
    [InlineData("soon", "is not a duration")]
    [InlineData("1 h", "is not a duration")]
    [InlineData("100000000000h", "is too long")]
    public void Refuses_what_is_not_a_non_negative_Go_duration_and_says_why(string text, string error)
    {
        Assert.False(GoDuration.TryParse(text, out _, out var actual));
        Assert.Contains(error, actual, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bare_number_is_no_longer_read_as_days()
    {
        // The old --gc-grace parser (TimeSpan.TryParse) took "10" for ten days.
        Assert.False(GoDuration.TryParse("10", out var duration));
        Assert.NotEqual(TimeSpan.FromDays(10), duration);
    }
}
