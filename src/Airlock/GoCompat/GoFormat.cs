using System.Globalization;
using System.Text;

namespace Airlock.GoCompat;

/// <summary>
/// Go's <c>fmt</c> (<c>%v</c>, <c>Sprint</c>, <c>Sprintln</c>, <c>Sprintf</c> with the common verbs) and
/// <c>encoding/json</c> for the values of <see cref="GoValue"/>. One deliberate difference: a pointer inside a
/// struct, map or slice prints as <c>&amp;{…}</c>, where Go prints a memory address that changes on every run.
/// </summary>
internal static class GoFormat
{
    public static string Value(object? value, bool plus = false) => Value(value, plus, top: true);

    private static string Value(object? value, bool plus, bool top) => value switch
    {
        null => "<nil>",
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => Float(d, 'g', -1),
        GoStruct s => "{" + string.Join(' ', s.Fields.Select(f => (plus ? f.Name + ":" : string.Empty) + Value(f.Value, plus, false))) + "}",
        GoPointer { Target: null } => "<nil>",
        GoPointer p => "&" + Value(p.Target, plus, false),
        GoMap m => "map[" + string.Join(' ', (m.Entries ?? []).Select(e => e.Key + ":" + Value(e.Value, plus, false))) + "]",
        GoSlice s => "[" + string.Join(' ', (s.Items ?? []).Select(i => Value(i, plus, false))) + "]",
        _ when value == GoValue.Missing => top ? "<no value>" : "<invalid reflect.Value>",
        _ => value.ToString() ?? string.Empty,
    };

    /// <summary><c>fmt.Sprint</c>: operands joined with a space where neither side is a string.</summary>
    public static string Sprint(IReadOnlyList<object?> args)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < args.Count; i++)
        {
            if (i > 0 && args[i] is not string && args[i - 1] is not string)
            {
                sb.Append(' ');
            }

            sb.Append(Value(args[i]));
        }

        return sb.ToString();
    }

    /// <summary><c>fmt.Sprintln</c>: operands always joined with a space, then a newline.</summary>
    public static string Sprintln(IReadOnlyList<object?> args) => string.Join(' ', args.Select(a => Value(a))) + "\n";

    /// <summary><c>fmt.Sprintf</c>: flags <c>-+# 0</c>, width, precision and the verbs v s q d t x X o b c e f g T %.</summary>
    public static string Sprintf(string format, IReadOnlyList<object?> args)
    {
        var sb = new StringBuilder();
        var argIndex = 0;
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if (c != '%')
            {
                sb.Append(c);
                continue;
            }

            if (++i >= format.Length)
            {
                sb.Append("%!(NOVERB)");
                break;
            }

            var spec = new Spec();
            for (; i < format.Length && format[i] is '-' or '+' or '#' or ' ' or '0'; i++)
            {
                switch (format[i])
                {
                    case '-': spec.Minus = true; break;
                    case '+': spec.Plus = true; break;
                    case '#': spec.Sharp = true; break;
                    case ' ': spec.Space = true; break;
                    case '0': spec.Zero = true; break;
                }
            }

            spec.Width = ReadNumber(format, ref i);
            if (i < format.Length && format[i] == '.')
            {
                i++;
                spec.Precision = ReadNumber(format, ref i) ?? 0;
            }

            if (i >= format.Length)
            {
                sb.Append("%!(NOVERB)");
                break;
            }

            var verb = format[i];
            if (verb == '%')
            {
                sb.Append('%');
                continue;
            }

            if (argIndex >= args.Count)
            {
                sb.Append("%!").Append(verb).Append("(MISSING)");
                continue;
            }

            sb.Append(Pad(FormatOne(verb, args[argIndex++], spec), spec));
        }

        if (argIndex < args.Count)
        {
            sb.Append("%!(EXTRA ");
            sb.Append(string.Join(", ", args.Skip(argIndex).Select(a => a is null ? "<nil>" : $"{GoValue.TypeName(a)}={Value(a)}")));
            sb.Append(')');
        }

        return sb.ToString();
    }

    private sealed class Spec
    {
        public bool Minus { get; set; }

        public bool Plus { get; set; }

        public bool Sharp { get; set; }

        public bool Space { get; set; }

        public bool Zero { get; set; }

        public int? Width { get; set; }

        public int? Precision { get; set; }
    }

    private static int? ReadNumber(string format, ref int i)
    {
        var start = i;
        while (i < format.Length && char.IsAsciiDigit(format[i]))
        {
            i++;
        }

        return i > start ? int.Parse(format.AsSpan(start, i - start), CultureInfo.InvariantCulture) : null;
    }

    private static string Pad(string s, Spec spec)
    {
        if (spec.Width is not { } width || s.Length >= width)
        {
            return s;
        }

        if (spec.Minus)
        {
            return s.PadRight(width);
        }

        if (spec.Zero && s.Length > 0 && s[0] is '-' or '+')
        {
            return s[0] + s[1..].PadLeft(width - 1, '0');
        }

        return s.PadLeft(width, spec.Zero ? '0' : ' ');
    }

    private static string BadVerb(char verb, object? arg) =>
        arg is null ? $"%!{verb}(<nil>)" : $"%!{verb}({GoValue.TypeName(arg)}={Value(arg)})";

    private static string FormatOne(char verb, object? arg, Spec spec)
    {
        switch (verb)
        {
            case 'v':
                return arg is double dv ? Float(dv, 'g', spec.Precision ?? -1) : Value(arg, spec.Plus);
            case 'T':
                return arg is null ? "<nil>" : GoValue.TypeName(arg);
        }

        switch (arg)
        {
            case string s:
                return verb switch
                {
                    's' => spec.Precision is { } p && p < s.Length ? s[..p] : s,
                    'q' => spec.Sharp && !s.Contains('`', StringComparison.Ordinal) ? "`" + s + "`" : GoQuote.Quote(s),
                    'x' => Convert.ToHexStringLower(Encoding.UTF8.GetBytes(s)),
                    'X' => Convert.ToHexString(Encoding.UTF8.GetBytes(s)),
                    _ => BadVerb(verb, arg),
                };
            case bool b:
                return verb == 't' ? (b ? "true" : "false") : BadVerb(verb, arg);
            case long l:
                var sign = l < 0 ? "-" : spec.Plus ? "+" : spec.Space ? " " : string.Empty;
                var magnitude = l < 0 ? (ulong)(-(l + 1)) + 1 : (ulong)l;
                return verb switch
                {
                    'd' => sign + magnitude.ToString(CultureInfo.InvariantCulture),
                    'x' => sign + (spec.Sharp ? "0x" : string.Empty) + magnitude.ToString("x", CultureInfo.InvariantCulture),
                    'X' => sign + (spec.Sharp ? "0X" : string.Empty) + magnitude.ToString("X", CultureInfo.InvariantCulture),
                    'o' => sign + (spec.Sharp ? "0" : string.Empty) + Convert.ToString((long)magnitude, 8),
                    'b' => sign + Convert.ToString((long)magnitude, 2),
                    'c' => l is >= 0 and <= 0x10FFFF && Rune.IsValid((int)l) ? char.ConvertFromUtf32((int)l) : "\uFFFD",
                    'q' => l is >= 0 and <= 0x10FFFF && Rune.IsValid((int)l) ? "'" + GoQuote.Quote(char.ConvertFromUtf32((int)l))[1..^1].Replace("\\\"", "\"", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'" : "'\\ufffd'",
                    _ => BadVerb(verb, arg),
                };
            case double d:
                return verb switch
                {
                    'f' or 'F' => Float(d, 'f', spec.Precision ?? 6),
                    'e' or 'E' => Float(d, verb, spec.Precision ?? 6),
                    'g' or 'G' => Float(d, verb, spec.Precision ?? -1),
                    _ => BadVerb(verb, arg),
                };
            case GoSlice slice when verb is 's' or 'q' or 'd' or 'x' or 'X' or 't':
                return "[" + string.Join(' ', (slice.Items ?? []).Select(i => FormatOne(verb, i, new Spec()))) + "]";
            case GoMap map when verb is 's' or 'q' or 'd' or 't':
                return "map[" + string.Join(' ', (map.Entries ?? []).Select(e => FormatOne(verb, e.Key, new Spec()) + ":" + FormatOne(verb, e.Value, new Spec()))) + "]";
            case GoStruct or GoPointer { Target: not null } when verb is 's' or 'd' or 'q' or 't':
                return Value(arg, spec.Plus);
            case GoPointer or GoMap or GoSlice when verb is 'p':
                return "0xc000000000";
            default:
                return BadVerb(verb, arg);
        }
    }

    /// <summary>Go's <c>strconv.FormatFloat</c> for 'f', 'e'/'E' and 'g'/'G' (precision -1 = shortest).</summary>
    public static string Float(double d, char format, int precision)
    {
        if (double.IsNaN(d))
        {
            return "NaN";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "+Inf" : "-Inf";
        }

        var (digits, exp) = Decimal(d, format, precision);
        var sign = d < 0 || (d == 0 && double.IsNegative(d)) ? "-" : string.Empty;
        switch (format)
        {
            case 'f' or 'F':
                return sign + Fixed(digits, exp, precision < 0 ? Math.Max(digits.Length - exp, 0) : precision);
            case 'e' or 'E':
                return sign + Exponent(digits, exp, precision < 0 ? digits.Length - 1 : precision, format);
            default:
                var eprec = precision < 0 ? 6 : precision == 0 ? 1 : precision;
                if (precision >= 0 && eprec > digits.Length && digits.Length >= exp)
                {
                    eprec = digits.Length;
                }

                var x = exp - 1;
                if (x < -4 || x >= eprec)
                {
                    return sign + Exponent(digits, exp, digits.Length - 1, format == 'G' ? 'E' : 'e');
                }

                return sign + Fixed(digits, exp, Math.Max(digits.Length - exp, 0));
        }
    }

    // Significant digits (no leading/trailing zeros) and decimal point position: value = 0.digits × 10^exp.
    private static (string Digits, int Exp) Decimal(double d, char format, int precision)
    {
        d = Math.Abs(d);
        if (d == 0)
        {
            return ("0", 1);
        }

        string e;
        if (precision < 0)
        {
            e = d.ToString("E16", CultureInfo.InvariantCulture);
            var shortest = d.ToString("R", CultureInfo.InvariantCulture);
            var sig = shortest.Split('E')[0].Replace(".", string.Empty, StringComparison.Ordinal).TrimStart('0').TrimEnd('0');
            var exp10 = int.Parse(e.Split('E')[1], CultureInfo.InvariantCulture);
            return (sig.Length == 0 ? "0" : sig, exp10 + 1);
        }

        var significant = format switch
        {
            'f' or 'F' => Math.Max(0, (int)Math.Floor(Math.Log10(d)) + 1 + precision),
            'e' or 'E' => precision + 1,
            _ => Math.Max(precision, 1),
        };
        if (significant == 0)
        {
            return ("0", 1);
        }

        e = d.ToString("E" + (significant - 1).ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var parts = e.Split('E');
        var digits = parts[0].Replace(".", string.Empty, StringComparison.Ordinal);
        return (format is 'g' or 'G' ? digits.TrimEnd('0') is { Length: > 0 } t ? t : "0" : digits, int.Parse(parts[1], CultureInfo.InvariantCulture) + 1);
    }

    private static string Fixed(string digits, int exp, int decimals)
    {
        var sb = new StringBuilder();
        if (exp <= 0)
        {
            sb.Append('0');
        }
        else
        {
            for (var i = 0; i < exp; i++)
            {
                sb.Append(i < digits.Length ? digits[i] : '0');
            }
        }

        if (decimals > 0)
        {
            sb.Append('.');
            for (var i = 0; i < decimals; i++)
            {
                var index = exp + i;
                sb.Append(index >= 0 && index < digits.Length ? digits[index] : '0');
            }
        }

        return sb.ToString();
    }

    private static string Exponent(string digits, int exp, int decimals, char e)
    {
        var sb = new StringBuilder().Append(digits[0]);
        if (decimals > 0)
        {
            sb.Append('.');
            for (var i = 1; i <= decimals; i++)
            {
                sb.Append(i < digits.Length ? digits[i] : '0');
            }
        }

        var x = digits == "0" ? 0 : exp - 1;
        sb.Append(e).Append(x < 0 ? '-' : '+').Append(Math.Abs(x).ToString("00", CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    /// <summary>Go's <c>json.Marshal</c>: struct fields by their json tags, map keys sorted, HTML characters escaped.</summary>
    public static string Json(object? value)
    {
        var sb = new StringBuilder();
        WriteJson(sb, value);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, object? value)
    {
        switch (value)
        {
            case null or GoPointer { Target: null } or GoMap { Entries: null } or GoSlice { Items: null }:
                sb.Append("null");
                break;
            case string s:
                JsonString(sb, s);
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case long l:
                sb.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                var abs = Math.Abs(d);
                var text = abs != 0 && (abs < 1e-6 || abs >= 1e21) ? Float(d, 'e', -1) : Float(d, 'f', -1);
                sb.Append(text.Replace("e-0", "e-", StringComparison.Ordinal).Replace("e+0", "e+", StringComparison.Ordinal));
                break;
            case GoPointer p:
                WriteJson(sb, p.Target);
                break;
            case GoStruct s:
                sb.Append('{');
                var first = true;
                foreach (var field in s.Fields.Where(f => f.JsonName != "-" && !(f.OmitEmpty && !GoValue.IsTrue(f.Value))))
                {
                    sb.Append(first ? string.Empty : ",");
                    first = false;
                    JsonString(sb, field.JsonName ?? field.Name);
                    sb.Append(':');
                    WriteJson(sb, field.Value);
                }

                sb.Append('}');
                break;
            case GoMap m:
                sb.Append('{');
                var firstKey = true;
                foreach (var (key, item) in m.Entries!)
                {
                    sb.Append(firstKey ? string.Empty : ",");
                    firstKey = false;
                    JsonString(sb, key);
                    sb.Append(':');
                    WriteJson(sb, item);
                }

                sb.Append('}');
                break;
            case GoSlice list:
                sb.Append('[');
                for (var i = 0; i < list.Items!.Count; i++)
                {
                    sb.Append(i > 0 ? "," : string.Empty);
                    WriteJson(sb, list.Items[i]);
                }

                sb.Append(']');
                break;
            default:
                sb.Append("null");
                break;
        }
    }

    private static void JsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '<' or '>' or '&' or '\u2028' or '\u2029' or < ' ':
                    sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    break;
                default: sb.Append(c); break;
            }
        }

        sb.Append('"');
    }
}
