using System.Globalization;
using System.Text;

namespace Airlock.Node;

/// <summary>A line-based unified diff for the small generated files (an LCS table is fine at this size).</summary>
internal static class TextDiff
{
    private const int Context = 3;

    /// <summary>Diff of <paramref name="before"/> → <paramref name="after"/>; null means the file is absent.</summary>
    public static string Unified(string? before, string? after, string path)
    {
        var a = Lines(before);
        var b = Lines(after);
        var ops = Operations(a, b);
        if (ops.All(o => o.Kind == ' '))
        {
            return string.Empty;
        }

        var sb = new StringBuilder();
        sb.Append("--- ").Append(before is null ? "/dev/null" : "a" + path).Append('\n');
        sb.Append("+++ ").Append(after is null ? "/dev/null" : "b" + path).Append('\n');
        var i = 0;
        while (i < ops.Count)
        {
            if (ops[i].Kind == ' ')
            {
                i++;
                continue;
            }

            var start = Math.Max(0, i - Context);
            var end = i;
            // Extend the hunk while changes are within 2 * Context lines of each other.
            while (end < ops.Count)
            {
                if (ops[end].Kind != ' ')
                {
                    end++;
                    continue;
                }

                var next = end;
                while (next < ops.Count && ops[next].Kind == ' ')
                {
                    next++;
                }

                if (next < ops.Count && next - end <= 2 * Context)
                {
                    end = next;
                    continue;
                }

                end = Math.Min(ops.Count, end + Context);
                break;
            }

            var hunk = ops.GetRange(start, end - start);
            var aStart = ops.Take(start).Count(o => o.Kind != '+');
            var bStart = ops.Take(start).Count(o => o.Kind != '-');
            var aCount = hunk.Count(o => o.Kind != '+');
            var bCount = hunk.Count(o => o.Kind != '-');
            sb.Append(CultureInfo.InvariantCulture, $"@@ -{(aCount == 0 ? aStart : aStart + 1)},{aCount} +{(bCount == 0 ? bStart : bStart + 1)},{bCount} @@\n");
            foreach (var op in hunk)
            {
                sb.Append(op.Kind).Append(op.Line).Append('\n');
            }

            i = end;
        }

        return sb.ToString();
    }

    private static string[] Lines(string? text) =>
        string.IsNullOrEmpty(text) ? [] : text.TrimEnd('\n').Split('\n');

    private static List<(char Kind, string Line)> Operations(string[] a, string[] b)
    {
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (var i = a.Length - 1; i >= 0; i--)
        {
            for (var j = b.Length - 1; j >= 0; j--)
            {
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            }
        }

        var ops = new List<(char, string)>();
        int x = 0, y = 0;
        while (x < a.Length || y < b.Length)
        {
            if (x < a.Length && y < b.Length && a[x] == b[y])
            {
                ops.Add((' ', a[x++]));
                y++;
            }
            else if (x < a.Length && (y == b.Length || lcs[x + 1, y] >= lcs[x, y + 1]))
            {
                ops.Add(('-', a[x++]));
            }
            else
            {
                ops.Add(('+', b[y++]));
            }
        }

        return ops;
    }
}
