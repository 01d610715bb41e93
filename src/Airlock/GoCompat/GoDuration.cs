using System.Globalization;

namespace Airlock.GoCompat;

/// <summary>
/// Durations in Go's <c>time.ParseDuration</c> syntax (<c>90s</c>, <c>1h30m</c>, <c>1.5h</c>, <c>500ms</c>), the one parser
/// for every duration Airlock reads: regsync files (<c>interval</c>, <c>retry</c>) and every duration flag of the CLI, since
/// K3s users write Go durations. It lives here, in the lowest layer that reads durations, because nothing below Bundles
/// does (Oci holds OCI's own types); the CLI, above every layer, reaches it from here.
/// </summary>
/// <remarks>
/// Differences from Go, on purpose: a negative duration is refused (nothing in Airlock means anything by one), and a bare
/// number other than <c>0</c> gets an error that suggests the unit (Go's "missing unit"), since older Airlock flags read
/// one as seconds or days. Precision is .NET's 100 ns tick; finer fractions are dropped, as Go drops those below 1 ns.
/// </remarks>
internal static class GoDuration
{
    private const string Example = "a duration like 90s, 30m or 1h30m (units ns, us, ms, s, m, h)";

    public static bool TryParse(string text, out TimeSpan duration) => TryParse(text, out duration, out _);

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says why, as a phrase to follow the value.</summary>
    public static bool TryParse(string text, out TimeSpan duration, out string error)
    {
        duration = TimeSpan.Zero;
        error = string.Empty;
        var s = text.AsSpan();
        if (s.Length > 0 && s[0] is '+' or '-')
        {
            if (s[0] == '-' && s[1..] is not "0")
            {
                error = "is negative";
                return false;
            }

            s = s[1..];
        }

        if (s is "0")
        {
            return true;
        }

        if (s.IsEmpty)
        {
            error = $"is not {Example}";
            return false;
        }

        decimal ticks = 0;
        while (!s.IsEmpty)
        {
            var digits = 0;
            while (digits < s.Length && (char.IsAsciiDigit(s[digits]) || s[digits] == '.'))
            {
                digits++;
            }

            var number = s[..digits];
            if (number.IsEmpty || number.Count('.') > 1 || number is "."
                || !decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
            {
                error = $"is not {Example}";
                return false;
            }

            s = s[digits..];
            var unitLength = 0;
            while (unitLength < s.Length && char.IsLetter(s[unitLength]))
            {
                unitLength++;
            }

            if (unitLength == 0)
            {
                error = !s.IsEmpty ? $"is not {Example}"
                    : text.AsSpan().IndexOfAnyExcept("0123456789.") < 0 ? $"has no unit: add a unit, e.g. {text}s"
                    : $"has no unit after \"{number}\"";
                return false;
            }

            decimal? perUnit = s[..unitLength] switch
            {
                "ns" => TimeSpan.TicksPerMicrosecond / 1000m,
                "us" or "µs" or "μs" => TimeSpan.TicksPerMicrosecond,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                _ => null,
            };
            if (perUnit is null)
            {
                error = $"has an unknown unit \"{s[..unitLength]}\" (units are ns, us, ms, s, m, h; no d: write 168h for 7 days)";
                return false;
            }

            s = s[unitLength..];
            try
            {
                ticks += amount * perUnit.Value;
            }
            catch (OverflowException)
            {
                ticks = decimal.MaxValue;
            }

            if (ticks > TimeSpan.MaxValue.Ticks)
            {
                error = "is too long";
                return false;
            }
        }

        duration = TimeSpan.FromTicks((long)decimal.Truncate(ticks));
        return true;
    }
}
