using System.Globalization;
using System.Text;

namespace Airlock.GoCompat;

internal enum TokenKind
{
    Text,
    Comment,
    LeftDelim,
    RightDelim,
    Space,
    Identifier,
    Keyword,
    Bool,
    Field,
    Variable,
    Dot,
    Number,
    CharConstant,
    String,
    RawString,
    LeftParen,
    RightParen,
    Pipe,
    Declare,
    Assign,
    Char,
    Eof,
}

internal readonly record struct Token(TokenKind Kind, string Text, int Pos)
{
    public override string ToString() => Kind switch
    {
        TokenKind.Eof => "EOF",
        TokenKind.Keyword => $"<{Text}>",
        TokenKind.RightDelim or TokenKind.LeftDelim => $"\"{Text.Trim()}\"",
        _ => Text.Length > 10 ? GoQuote.Quote(Text[..10]) + "..." : GoQuote.Quote(Text),
    };
}

/// <summary>
/// Go <c>text/template</c>'s lexer: text, <c>{{ }}</c> actions with <c>{{- </c>/<c> -}}</c> trimming, and
/// <c>{{/* */}}</c> comments. Errors carry the offset where the problem is.
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with",
    };

    private readonly string _src;
    private readonly List<Token> _tokens = [];
    private int _pos;

    private TemplateLexer(string src) => _src = src;

    public static List<Token> Lex(string src)
    {
        var lexer = new TemplateLexer(src);
        lexer.Run();
        return lexer._tokens;
    }

    private static bool IsSpace(char c) => c is ' ' or '\t' or '\r' or '\n';

    private static bool IsAlphaNumeric(char c) => c == '_' || char.IsLetterOrDigit(c);

    private void Run()
    {
        while (_pos < _src.Length)
        {
            var start = _src.IndexOf("{{", _pos, StringComparison.Ordinal);
            if (start < 0)
            {
                Emit(TokenKind.Text, _src[_pos..], _pos);
                _pos = _src.Length;
                break;
            }

            var leftTrim = start + 3 < _src.Length && _src[start + 2] == '-' && IsSpace(_src[start + 3]);
            var text = _src[_pos..start];
            if (leftTrim)
            {
                text = text.TrimEnd(' ', '\t', '\r', '\n');
            }

            if (text.Length > 0)
            {
                Emit(TokenKind.Text, text, _pos);
            }

            _pos = start + 2 + (leftTrim ? 2 : 0);
            if (At("/*"))
            {
                LexComment(start);
                continue;
            }

            Emit(TokenKind.LeftDelim, "{{", start);
            LexInsideAction(start);
        }

        Emit(TokenKind.Eof, string.Empty, _src.Length);
    }

    private bool At(string s) => string.CompareOrdinal(_src, _pos, s, 0, s.Length) == 0;

    private bool AtRightTrimMarker() =>
        _pos + 3 < _src.Length && IsSpace(_src[_pos]) && _src[_pos + 1] == '-' && _src[_pos + 2] == '}' && _src[_pos + 3] == '}';

    private void Emit(TokenKind kind, string text, int pos) => _tokens.Add(new Token(kind, text, pos));

    private void SkipSpaceAfterTrim()
    {
        while (_pos < _src.Length && IsSpace(_src[_pos]))
        {
            _pos++;
        }
    }

    private void LexComment(int delimStart)
    {
        var end = _src.IndexOf("*/", _pos + 2, StringComparison.Ordinal);
        if (end < 0)
        {
            throw new TemplateSyntaxException(delimStart, "unclosed comment");
        }

        _pos = end + 2;
        if (AtRightTrimMarker())
        {
            _pos += 4;
            Emit(TokenKind.Comment, _src[delimStart.._pos], delimStart);
            SkipSpaceAfterTrim();
        }
        else if (At("}}"))
        {
            _pos += 2;
            Emit(TokenKind.Comment, _src[delimStart.._pos], delimStart);
        }
        else
        {
            throw new TemplateSyntaxException(delimStart, "comment ends before closing delimiter");
        }
    }

    private void LexInsideAction(int delimStart)
    {
        var parenDepth = 0;
        while (true)
        {
            if (AtRightTrimMarker() || At("}}"))
            {
                if (parenDepth > 0)
                {
                    throw new TemplateSyntaxException(_pos, "unclosed left paren");
                }

                var trim = !At("}}");
                Emit(TokenKind.RightDelim, trim ? " -}}" : "}}", _pos);
                _pos += trim ? 4 : 2;
                if (trim)
                {
                    SkipSpaceAfterTrim();
                }

                return;
            }

            if (_pos >= _src.Length)
            {
                throw new TemplateSyntaxException(delimStart, "unclosed action");
            }

            var c = _src[_pos];
            var start = _pos;
            switch (c)
            {
                case var _ when IsSpace(c):
                    while (_pos < _src.Length && IsSpace(_src[_pos]) && !AtRightTrimMarker())
                    {
                        _pos++;
                    }

                    if (_pos > start)
                    {
                        Emit(TokenKind.Space, _src[start.._pos], start);
                    }

                    break;
                case '=':
                    _pos++;
                    Emit(TokenKind.Assign, "=", start);
                    break;
                case ':':
                    if (_pos + 1 >= _src.Length || _src[_pos + 1] != '=')
                    {
                        throw new TemplateSyntaxException(_pos, "expected :=");
                    }

                    _pos += 2;
                    Emit(TokenKind.Declare, ":=", start);
                    break;
                case '|':
                    _pos++;
                    Emit(TokenKind.Pipe, "|", start);
                    break;
                case '"':
                    LexQuote(start);
                    break;
                case '`':
                    var close = _src.IndexOf('`', _pos + 1);
                    if (close < 0)
                    {
                        throw new TemplateSyntaxException(start, "unterminated raw quoted string");
                    }

                    _pos = close + 1;
                    Emit(TokenKind.RawString, _src[start.._pos], start);
                    break;
                case '\'':
                    LexChar(start);
                    break;
                case '$':
                    _pos++;
                    LexFieldOrVariable(TokenKind.Variable, start);
                    break;
                case '.':
                    if (_pos + 1 < _src.Length && char.IsAsciiDigit(_src[_pos + 1]))
                    {
                        LexNumber(start);
                        break;
                    }

                    _pos++;
                    LexFieldOrVariable(TokenKind.Field, start);
                    break;
                case '(':
                    _pos++;
                    parenDepth++;
                    Emit(TokenKind.LeftParen, "(", start);
                    break;
                case ')':
                    _pos++;
                    parenDepth--;
                    if (parenDepth < 0)
                    {
                        throw new TemplateSyntaxException(start, "unexpected right paren");
                    }

                    Emit(TokenKind.RightParen, ")", start);
                    break;
                case '+' or '-':
                case var _ when char.IsAsciiDigit(c):
                    LexNumber(start);
                    break;
                case var _ when IsAlphaNumeric(c):
                    while (_pos < _src.Length && IsAlphaNumeric(_src[_pos]))
                    {
                        _pos++;
                    }

                    CheckTerminator();
                    var word = _src[start.._pos];
                    Emit(Keywords.Contains(word) ? TokenKind.Keyword : word is "true" or "false" ? TokenKind.Bool : TokenKind.Identifier, word, start);
                    break;
                case var _ when c < 0x7f && !char.IsControl(c):
                    _pos++;
                    Emit(TokenKind.Char, c.ToString(), start);
                    break;
                default:
                    throw new TemplateSyntaxException(start, string.Create(CultureInfo.InvariantCulture, $"unrecognized character in action: U+{(int)c:X4}"));
            }
        }
    }

    private void LexFieldOrVariable(TokenKind kind, int start)
    {
        if (AtTerminator())
        {
            Emit(kind == TokenKind.Variable ? TokenKind.Variable : TokenKind.Dot, kind == TokenKind.Variable ? "$" : ".", start);
            return;
        }

        while (_pos < _src.Length && IsAlphaNumeric(_src[_pos]))
        {
            _pos++;
        }

        CheckTerminator();
        Emit(kind, _src[start.._pos], start);
    }

    private void CheckTerminator()
    {
        if (!AtTerminator())
        {
            throw new TemplateSyntaxException(_pos, string.Create(CultureInfo.InvariantCulture, $"bad character U+{(int)_src[_pos]:X4} '{_src[_pos]}'"));
        }
    }

    private bool AtTerminator()
    {
        if (_pos >= _src.Length)
        {
            return true;
        }

        var c = _src[_pos];
        return IsSpace(c) || c is '.' or ',' or '|' or ':' or ')' or '(' || At("}}");
    }

    private void LexQuote(int start)
    {
        _pos++;
        while (true)
        {
            if (_pos >= _src.Length || _src[_pos] == '\n')
            {
                throw new TemplateSyntaxException(start, "unterminated quoted string");
            }

            var c = _src[_pos++];
            if (c == '\\')
            {
                if (_pos >= _src.Length || _src[_pos] == '\n')
                {
                    throw new TemplateSyntaxException(start, "unterminated quoted string");
                }

                _pos++;
            }
            else if (c == '"')
            {
                break;
            }
        }

        Emit(TokenKind.String, _src[start.._pos], start);
    }

    private void LexChar(int start)
    {
        _pos++;
        while (true)
        {
            if (_pos >= _src.Length || _src[_pos] == '\n')
            {
                throw new TemplateSyntaxException(start, "unterminated character constant");
            }

            var c = _src[_pos++];
            if (c == '\\')
            {
                _pos++;
            }
            else if (c == '\'')
            {
                break;
            }
        }

        Emit(TokenKind.CharConstant, _src[start.._pos], start);
    }

    private void LexNumber(int start)
    {
        if (_src[_pos] is '+' or '-')
        {
            _pos++;
        }

        while (_pos < _src.Length && (IsAlphaNumeric(_src[_pos]) || _src[_pos] == '.'
            || (_src[_pos] is '+' or '-' && _src[_pos - 1] is 'e' or 'E' or 'p' or 'P')))
        {
            _pos++;
        }

        var text = _src[start.._pos];
        if (TemplateNumber.Parse(text) is null)
        {
            throw new TemplateSyntaxException(start, $"bad number syntax: \"{text}\"");
        }

        Emit(TokenKind.Number, text, start);
    }

    /// <summary>Go's <c>strconv.Unquote</c> for "…", `…` and '…' literals; null when malformed.</summary>
    public static string? Unquote(string literal)
    {
        if (literal.Length < 2)
        {
            return null;
        }

        if (literal[0] == '`')
        {
            return literal[1..^1].Replace("\r", string.Empty, StringComparison.Ordinal);
        }

        var sb = new StringBuilder();
        var body = literal[1..^1];
        for (var i = 0; i < body.Length; i++)
        {
            var c = body[i];
            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }

            if (++i >= body.Length)
            {
                return null;
            }

            switch (body[i])
            {
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case '\\': sb.Append('\\'); break;
                case '"' when literal[0] == '"': sb.Append('"'); break;
                case '\'' when literal[0] == '\'': sb.Append('\''); break;
                case 'x' or 'u' or 'U':
                    var digits = body[i] switch { 'x' => 2, 'u' => 4, _ => 8 };
                    if (body.Length - i - 1 < digits
                        || !int.TryParse(body.AsSpan(i + 1, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var code))
                    {
                        return null;
                    }

                    if (digits == 2)
                    {
                        sb.Append((char)code);
                    }
                    else if (!Rune.IsValid(code))
                    {
                        return null;
                    }
                    else
                    {
                        sb.Append(char.ConvertFromUtf32(code));
                    }

                    i += digits;
                    break;
                case >= '0' and <= '7':
                    if (i + 2 >= body.Length || !int.TryParse(body.AsSpan(i, 3), NumberStyles.None, CultureInfo.InvariantCulture, out _))
                    {
                        return null;
                    }

                    sb.Append((char)Convert.ToInt32(body.Substring(i, 3), 8));
                    i += 2;
                    break;
                default:
                    return null;
            }
        }

        return sb.ToString();
    }
}

/// <summary>Number literals: Go ints (decimal, 0x, 0o, 0b, underscores) and floats.</summary>
internal static class TemplateNumber
{
    public static object? Parse(string text)
    {
        var t = text.Replace("_", string.Empty, StringComparison.Ordinal);
        var negative = t.StartsWith('-');
        var body = t.TrimStart('+', '-');
        long? integer = null;
        try
        {
            if (body.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && body.Length > 2 && !body.Contains('.', StringComparison.Ordinal) && !body.Contains('p', StringComparison.OrdinalIgnoreCase))
            {
                integer = Convert.ToInt64(body[2..], 16);
            }
            else if (body.StartsWith("0o", StringComparison.OrdinalIgnoreCase) && body.Length > 2)
            {
                integer = Convert.ToInt64(body[2..], 8);
            }
            else if (body.StartsWith("0b", StringComparison.OrdinalIgnoreCase) && body.Length > 2)
            {
                integer = Convert.ToInt64(body[2..], 2);
            }
            else if (body.Length > 1 && body[0] == '0' && body.All(char.IsAsciiDigit))
            {
                integer = Convert.ToInt64(body[1..], 8);
            }
            else if (body.Length > 0 && body.All(char.IsAsciiDigit))
            {
                integer = long.Parse(body, NumberStyles.None, CultureInfo.InvariantCulture);
            }
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
        {
            return null;
        }

        if (integer is { } value)
        {
            return negative ? -value : value;
        }

        if (body.Length > 0 && (char.IsAsciiDigit(body[0]) || body[0] == '.')
            && double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            return d;
        }

        return null;
    }
}
