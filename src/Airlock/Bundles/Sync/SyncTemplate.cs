using System.Text;

namespace Airlock.Bundles.Sync;

/// <summary>
/// The part of Go's text/template that regsync files use in practice: <c>{{ env "NAME" }}</c>,
/// <c>{{ file "PATH" }}</c>, string literals and the <c>{{-</c>/<c>-}}</c> whitespace trim markers. Anything
/// else is refused with the offset of the action, rather than copied through as literal text.
/// </summary>
internal static class SyncTemplate
{
    /// <summary>Expands <paramref name="text"/>; on failure returns the error and the offset in the text it is at.</summary>
    public static bool TryExpand(string text, Func<string, string?> environment, Func<string, string> readFile,
        out string result, out (int Offset, string Message) error)
    {
        var output = new StringBuilder();
        var position = 0;
        result = text;
        error = default;
        while (position < text.Length)
        {
            var open = text.IndexOf("{{", position, StringComparison.Ordinal);
            if (open < 0)
            {
                output.Append(text, position, text.Length - position);
                break;
            }

            output.Append(text, position, open - position);
            var bodyStart = open + 2;
            // Go requires a space after "{{-" for it to be a trim marker ("{{-3}}" is the number -3).
            if (bodyStart + 1 < text.Length && text[bodyStart] == '-' && char.IsWhiteSpace(text[bodyStart + 1]))
            {
                TrimEnd(output);
                bodyStart++;
            }

            var close = FindClose(text, bodyStart);
            if (close < 0)
            {
                error = (open, "unclosed action: \"{{\" without \"}}\"");
                return false;
            }

            var bodyEnd = close;
            var trimAfter = close >= 2 && text[close - 1] == '-' && char.IsWhiteSpace(text[close - 2]);
            if (trimAfter)
            {
                bodyEnd--;
            }

            if (!TryEvaluate(text[bodyStart..bodyEnd], environment, readFile, out var value, out var message))
            {
                error = (open, message);
                return false;
            }

            output.Append(value);
            position = close + 2;
            if (trimAfter)
            {
                while (position < text.Length && char.IsWhiteSpace(text[position]))
                {
                    position++;
                }
            }
        }

        result = output.ToString();
        return true;
    }

    private static void TrimEnd(StringBuilder output)
    {
        while (output.Length > 0 && char.IsWhiteSpace(output[^1]))
        {
            output.Length--;
        }
    }

    // The first "}}" outside a string literal.
    private static int FindClose(string text, int start)
    {
        for (var i = start; i < text.Length - 1; i++)
        {
            if (text[i] is '"' or '`')
            {
                var quote = text[i];
                for (i++; i < text.Length && text[i] != quote; i++)
                {
                    if (quote == '"' && text[i] == '\\')
                    {
                        i++;
                    }
                }
            }
            else if (text[i] == '}' && text[i + 1] == '}')
            {
                return i;
            }
        }

        return -1;
    }

    private static bool TryEvaluate(string body, Func<string, string?> environment, Func<string, string> readFile, out string value, out string message)
    {
        value = "";
        message = "";
        var tokens = new List<(bool IsString, string Text)>();
        var i = 0;
        while (i < body.Length)
        {
            if (char.IsWhiteSpace(body[i]))
            {
                i++;
            }
            else if (body[i] is '"' or '`')
            {
                if (!TryReadString(body, ref i, out var literal, out message))
                {
                    return false;
                }

                tokens.Add((true, literal));
            }
            else
            {
                var start = i;
                while (i < body.Length && !char.IsWhiteSpace(body[i]) && body[i] is not ('"' or '`'))
                {
                    i++;
                }

                tokens.Add((false, body[start..i]));
            }
        }

        switch (tokens)
        {
            case [(true, var literal)]:
                value = literal;
                return true;
            case [(false, "env"), (true, var name)]:
                value = environment(name) ?? "";
                return true;
            case [(false, "file"), (true, var path)]:
                try
                {
                    value = readFile(path);
                    return true;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    message = $"file \"{path}\": {e.Message}";
                    return false;
                }

            case [(false, "env" or "file"), ..]:
                message = $"function \"{tokens[0].Text}\" takes one string argument";
                return false;
            case []:
                message = "empty action";
                return false;
            case [(false, var word), ..]:
                message = $"unsupported template expression \"{word}\" (only env \"NAME\", file \"PATH\" and string literals are supported)";
                return false;
            default:
                message = "unsupported template expression (only env \"NAME\", file \"PATH\" and string literals are supported)";
                return false;
        }
    }

    private static bool TryReadString(string body, ref int i, out string literal, out string message)
    {
        var quote = body[i++];
        var text = new StringBuilder();
        literal = "";
        message = "";
        while (i < body.Length && body[i] != quote)
        {
            if (quote == '"' && body[i] == '\\' && i + 1 < body.Length)
            {
                i++;
                switch (body[i])
                {
                    case 'n': text.Append('\n'); break;
                    case 't': text.Append('\t'); break;
                    case '\\' or '"': text.Append(body[i]); break;
                    default:
                        message = $"unsupported escape \"\\{body[i]}\" in string literal";
                        return false;
                }
            }
            else
            {
                text.Append(body[i]);
            }

            i++;
        }

        if (i >= body.Length)
        {
            message = "unterminated string literal";
            return false;
        }

        i++;
        literal = text.ToString();
        return true;
    }
}
