using System.Globalization;
using System.Text;

namespace Airlock.GoCompat;

/// <summary>
/// Go's <c>strconv.Quote</c> (<c>%q</c>), which K3s uses for paths and credentials in hosts.toml and config.toml.
/// Its escapes (<c>\"</c>, <c>\\</c>, <c>\n</c>, <c>\x07</c>, <c>\u00a0</c>) are also valid TOML basic-string
/// escapes except <c>\x</c>, which only control bytes below 0x20 produce and YAML cannot carry unescaped anyway.
/// </summary>
internal static class GoQuote
{
    public static string Quote(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (var rune in value.EnumerateRunes())
        {
            var escape = rune.Value switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\a' => "\\a",
                '\b' => "\\b",
                '\f' => "\\f",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\v' => "\\v",
                _ => null,
            };
            if (escape is not null)
            {
                sb.Append(escape);
            }
            else if (IsPrint(rune))
            {
                sb.Append(rune.ToString());
            }
            else if (rune.Value < ' ' || rune.Value == 0x7f)
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\x{rune.Value:x2}");
            }
            else if (rune.Value < 0x10000)
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\u{rune.Value:x4}");
            }
            else
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\U{rune.Value:x8}");
            }
        }

        return sb.Append('"').ToString();
    }

    // Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    private static bool IsPrint(Rune rune)
    {
        if (rune.Value == ' ')
        {
            return true;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned => false,
            _ => true,
        };
    }
}
