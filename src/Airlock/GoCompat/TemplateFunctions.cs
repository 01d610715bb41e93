using System.Globalization;
using System.Text;

namespace Airlock.GoCompat;

/// <summary>How an argument reaches a function, as the Go parameter type decides.</summary>
internal enum ParamKind
{
    /// <summary><c>any</c>: a missing value arrives as nil.</summary>
    Any,

    /// <summary><c>reflect.Value</c>: a missing value arrives as <see cref="GoValue.Missing"/>.</summary>
    Value,

    /// <summary><c>string</c>: anything else is an error.</summary>
    String,
}

/// <summary>A function error; the executor reports it as <c>error calling NAME: MESSAGE</c>.</summary>
internal sealed class TemplateFunctionException(string message) : Exception(message);

internal sealed record TemplateFunction(string Name, ParamKind[] Fixed, ParamKind? Variadic, Func<IReadOnlyList<object?>, object?> Invoke);

/// <summary>
/// Go's <c>text/template</c> builtins (and, or, not, len, index, slice, print, printf, println, html, js, urlquery,
/// eq, ne, lt, le, gt, ge); a program adds its own with <see cref="With"/>, as Go's <c>Funcs</c> does.
/// </summary>
internal static class TemplateFunctions
{
    public static readonly IReadOnlyDictionary<string, TemplateFunction> Builtins = Build();

    /// <summary>The builtins and <paramref name="extra"/> (which win on a name clash, as in Go).</summary>
    public static IReadOnlyDictionary<string, TemplateFunction> With(IEnumerable<TemplateFunction> extra)
    {
        var all = new Dictionary<string, TemplateFunction>(Builtins, StringComparer.Ordinal);
        foreach (var function in extra)
        {
            all[function.Name] = function;
        }

        return all;
    }

    private static Dictionary<string, TemplateFunction> Build()
    {
        var list = new List<TemplateFunction>
        {
            // and/or short-circuit in the executor; these entries give their arity.
            new("and", [ParamKind.Value], ParamKind.Value, _ => null),
            new("or", [ParamKind.Value], ParamKind.Value, _ => null),
            new("not", [ParamKind.Value], null, a => !GoValue.IsTrue(a[0])),
            new("len", [ParamKind.Value], null, a => Length(a[0])),
            new("index", [ParamKind.Value], ParamKind.Value, a => Index(a[0], a.Skip(1).ToList())),
            new("slice", [ParamKind.Value], ParamKind.Value, a => Slice(a[0], a.Skip(1).ToList())),
            new("print", [], ParamKind.Any, GoFormat.Sprint),
            new("println", [], ParamKind.Any, GoFormat.Sprintln),
            new("printf", [ParamKind.String], ParamKind.Any, a => GoFormat.Sprintf((string)a[0]!, a.Skip(1).ToList())),
            new("html", [], ParamKind.Any, a => HtmlEscape(EvalArgs(a))),
            new("js", [], ParamKind.Any, a => JsEscape(EvalArgs(a))),
            new("urlquery", [], ParamKind.Any, a => QueryEscape(EvalArgs(a))),
            new("eq", [ParamKind.Value], ParamKind.Value, a => Eq(a[0], a.Skip(1).ToList())),
            new("ne", [ParamKind.Value, ParamKind.Value], null, a => !Eq(a[0], [a[1]])),
            new("lt", [ParamKind.Value, ParamKind.Value], null, a => Less(a[0], a[1])),
            new("le", [ParamKind.Value, ParamKind.Value], null, a => Less(a[0], a[1]) || Eq(a[0], [a[1]])),
            new("gt", [ParamKind.Value, ParamKind.Value], null, a => !(Less(a[0], a[1]) || Eq(a[0], [a[1]]))),
            new("ge", [ParamKind.Value, ParamKind.Value], null, a => !Less(a[0], a[1])),
        };
        return list.ToDictionary(f => f.Name, StringComparer.Ordinal);
    }

    private static string EvalArgs(IReadOnlyList<object?> args) => args is [string s] ? s : GoFormat.Sprint(args);

    private static long Length(object? item)
    {
        return GoValue.Indirect(item) switch
        {
            GoPointer => throw new TemplateFunctionException("len of nil pointer"),
            string s => Encoding.UTF8.GetByteCount(s),
            GoMap m => m.Count,
            GoSlice s => s.Count,
            var other when other == GoValue.Missing || other is null => throw new TemplateFunctionException("len of untyped nil"),
            var other => throw new TemplateFunctionException($"len of type {GoValue.TypeName(other)}"),
        };
    }

    private static object? Index(object? item, List<object?> indexes)
    {
        if (item is null || item == GoValue.Missing)
        {
            throw new TemplateFunctionException("index of untyped nil");
        }

        foreach (var index in indexes)
        {
            if (item is GoPointer { Target: null })
            {
                throw new TemplateFunctionException("index of nil pointer");
            }

            item = GoValue.Indirect(item);
            switch (item)
            {
                case GoSlice slice:
                    item = slice.Items![IndexArg(index, slice.Count - 1)];
                    break;
                case string s:
                    item = (long)Encoding.UTF8.GetBytes(s)[IndexArg(index, Encoding.UTF8.GetByteCount(s) - 1)];
                    break;
                case GoMap map:
                    if (index is not string key)
                    {
                        throw new TemplateFunctionException(index is null || index == GoValue.Missing
                            ? "value is nil; should be of type string"
                            : $"value has type {GoValue.TypeName(index)}; should be string");
                    }

                    item = map.Entries is not null && map.Entries.TryGetValue(key, out var found) ? found : map.ElementZero;
                    break;
                default:
                    throw new TemplateFunctionException($"can't index item of type {GoValue.TypeName(item)}");
            }
        }

        return item;
    }

    private static int IndexArg(object? index, int max)
    {
        if (index is not long x)
        {
            throw new TemplateFunctionException(index is null || index == GoValue.Missing
                ? "cannot index slice/array with nil"
                : $"cannot index slice/array with type {GoValue.TypeName(index)}");
        }

        if (x < 0 || x > max)
        {
            throw new TemplateFunctionException(string.Create(CultureInfo.InvariantCulture, $"index out of range: {x}"));
        }

        return (int)x;
    }

    private static object? Slice(object? item, List<object?> indexes)
    {
        item = GoValue.Indirect(item);
        if (item is null || item == GoValue.Missing)
        {
            throw new TemplateFunctionException("slice of untyped nil");
        }

        if (indexes.Count > 3)
        {
            throw new TemplateFunctionException(string.Create(CultureInfo.InvariantCulture, $"too many slice indexes: {indexes.Count}"));
        }

        var length = item switch
        {
            string s => s.Length,
            GoSlice s => s.Count,
            _ => throw new TemplateFunctionException($"can't slice item of type {GoValue.TypeName(item)}"),
        };
        if (item is string && indexes.Count == 3)
        {
            throw new TemplateFunctionException("cannot 3-index slice a string");
        }

        var bounds = new[] { 0, length };
        for (var i = 0; i < Math.Min(indexes.Count, 2); i++)
        {
            bounds[i] = IndexArg(indexes[i], length);
        }

        if (bounds[0] > bounds[1])
        {
            throw new TemplateFunctionException(string.Create(CultureInfo.InvariantCulture, $"invalid slice index: {bounds[0]} > {bounds[1]}"));
        }

        return item is string str
            ? str[bounds[0]..bounds[1]]
            : new GoSlice(((GoSlice)item).TypeName, ((GoSlice)item).Items?.Skip(bounds[0]).Take(bounds[1] - bounds[0]).ToList() ?? []);
    }

    private enum Kind
    {
        Invalid,
        Bool,
        Int,
        Float,
        String,
        Other,
    }

    private static Kind BasicKind(object? value) => value switch
    {
        bool => Kind.Bool,
        long => Kind.Int,
        double => Kind.Float,
        string => Kind.String,
        null => Kind.Invalid,
        _ when value == GoValue.Missing => Kind.Invalid,
        _ => Kind.Other,
    };

    private static bool Eq(object? arg1, List<object?> others)
    {
        if (others.Count == 0)
        {
            throw new TemplateFunctionException("missing argument for comparison");
        }

        var k1 = BasicKind(arg1);
        foreach (var arg in others)
        {
            var k2 = BasicKind(arg);
            bool truth;
            if (k1 != k2)
            {
                if (k1 != Kind.Invalid && k2 != Kind.Invalid)
                {
                    throw new TemplateFunctionException("incompatible types for comparison");
                }

                truth = false;
            }
            else if (k1 == Kind.Other)
            {
                if (arg1 is GoMap or GoSlice || arg is GoMap or GoSlice)
                {
                    throw new TemplateFunctionException($"non-comparable type {GoFormat.Value(arg)}: {GoValue.TypeName(arg)}");
                }

                truth = ReferenceEquals(arg1, arg) || (arg1 is GoPointer { Target: null } p1 && arg is GoPointer { Target: null } p2 && p1.TypeName == p2.TypeName);
            }
            else
            {
                truth = Equals(arg1, arg) || k1 == Kind.Invalid;
            }

            if (truth)
            {
                return true;
            }
        }

        return false;
    }

    private static bool Less(object? a, object? b)
    {
        var k1 = BasicKind(a);
        var k2 = BasicKind(b);
        if (k1 is Kind.Invalid or Kind.Other || k2 is Kind.Invalid or Kind.Other)
        {
            throw new TemplateFunctionException("invalid type for comparison");
        }

        if (k1 != k2)
        {
            throw new TemplateFunctionException("incompatible types for comparison");
        }

        return k1 switch
        {
            Kind.Int => (long)a! < (long)b!,
            Kind.Float => (double)a! < (double)b!,
            Kind.String => string.CompareOrdinal((string)a!, (string)b!) < 0,
            _ => throw new TemplateFunctionException("invalid type for comparison"),
        };
    }

    /// <summary>Go's <c>path/filepath.Join</c> on Linux: non-empty elements joined with "/" and Clean'ed.</summary>
    public static string FilepathJoin(IEnumerable<string> elements)
    {
        var joined = string.Join('/', elements.Where(e => e.Length > 0));
        if (joined.Length == 0)
        {
            return string.Empty;
        }

        var rooted = joined[0] == '/';
        var parts = new List<string>();
        foreach (var part in joined.Split('/'))
        {
            if (part is "" or ".")
            {
                continue;
            }

            if (part == ".." && parts.Count > 0 && parts[^1] != "..")
            {
                parts.RemoveAt(parts.Count - 1);
            }
            else if (part != ".." || !rooted)
            {
                parts.Add(part);
            }
        }

        var cleaned = string.Join('/', parts);
        return rooted ? "/" + cleaned : cleaned.Length == 0 ? "." : cleaned;
    }

    private static string HtmlEscape(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s)
        {
            sb.Append(c switch
            {
                '\0' => "\uFFFD",
                '"' => "&#34;",
                '\'' => "&#39;",
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                _ => c.ToString(),
            });
        }

        return sb.ToString();
    }

    private static string JsEscape(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var rune in s.EnumerateRunes())
        {
            var v = rune.Value;
            if (v < 0x80)
            {
                var c = (char)v;
                sb.Append(c switch
                {
                    '\\' => "\\\\",
                    '\'' => "\\'",
                    '"' => "\\\"",
                    '<' => "\\u003C",
                    '>' => "\\u003E",
                    '&' => "\\u0026",
                    '=' => "\\u003D",
                    < ' ' => string.Create(CultureInfo.InvariantCulture, $"\\u00{v:X2}"),
                    _ => c.ToString(),
                });
            }
            else if (Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
                or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\u{v:X4}");
            }
            else
            {
                sb.Append(rune.ToString());
            }
        }

        return sb.ToString();
    }

    private static string QueryEscape(string s)
    {
        var sb = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~')
            {
                sb.Append(c);
            }
            else if (c == ' ')
            {
                sb.Append('+');
            }
            else
            {
                sb.Append(CultureInfo.InvariantCulture, $"%{b:X2}");
            }
        }

        return sb.ToString();
    }
}
