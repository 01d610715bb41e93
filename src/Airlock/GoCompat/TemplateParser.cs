namespace Airlock.GoCompat;

internal abstract record TemplateNode(int Pos);

internal sealed record ListNode(int Pos, List<TemplateNode> Nodes) : TemplateNode(Pos);

internal sealed record TextNode(int Pos, string Text) : TemplateNode(Pos);

internal sealed record ActionNode(int Pos, PipeNode Pipe) : TemplateNode(Pos);

internal sealed record PipeNode(int Pos, bool IsAssign, List<VariableNode> Decl, List<CommandNode> Cmds) : TemplateNode(Pos)
{
    public override string ToString() =>
        (Decl.Count > 0 ? string.Join(", ", Decl) + (IsAssign ? " = " : " := ") : string.Empty) + string.Join(" | ", Cmds);
}

internal sealed record CommandNode(int Pos, List<TemplateNode> Args) : TemplateNode(Pos)
{
    public override string ToString() => string.Join(' ', Args.Select(a => a is PipeNode ? $"({a})" : a.ToString()));
}

internal sealed record FieldNode(int Pos, string[] Idents) : TemplateNode(Pos)
{
    public override string ToString() => "." + string.Join('.', Idents);
}

internal sealed record VariableNode(int Pos, string[] Idents) : TemplateNode(Pos)
{
    public override string ToString() => string.Join('.', Idents);
}

internal sealed record ChainNode(int Pos, TemplateNode Node, string[] Fields) : TemplateNode(Pos)
{
    public override string ToString() => (Node is PipeNode ? $"({Node})" : Node.ToString()) + "." + string.Join('.', Fields);
}

internal sealed record IdentifierNode(int Pos, string Name) : TemplateNode(Pos)
{
    public override string ToString() => Name;
}

internal sealed record DotNode(int Pos) : TemplateNode(Pos)
{
    public override string ToString() => ".";
}

internal sealed record NilNode(int Pos) : TemplateNode(Pos)
{
    public override string ToString() => "nil";
}

internal sealed record BoolNode(int Pos, bool Value) : TemplateNode(Pos)
{
    public override string ToString() => Value ? "true" : "false";
}

/// <summary>A number literal: <see cref="Value"/> is a <see cref="long"/> (Go int) or <see cref="double"/> (float64).</summary>
internal sealed record NumberNode(int Pos, object Value, string Text) : TemplateNode(Pos)
{
    public override string ToString() => Text;
}

internal sealed record StringNode(int Pos, string Quoted, string Value) : TemplateNode(Pos)
{
    public override string ToString() => Quoted;
}

internal enum ControlKind
{
    If,
    Range,
    With,
}

internal sealed record ControlNode(int Pos, ControlKind Kind, PipeNode Pipe, ListNode List, ListNode? Else) : TemplateNode(Pos);

internal sealed record TemplateCallNode(int Pos, string Name, PipeNode? Pipe) : TemplateNode(Pos);

internal sealed record BreakNode(int Pos) : TemplateNode(Pos);

internal sealed record ContinueNode(int Pos) : TemplateNode(Pos);

internal sealed record EndNode(int Pos) : TemplateNode(Pos)
{
    public override string ToString() => "{{end}}";
}

internal sealed record ElseNode(int Pos) : TemplateNode(Pos)
{
    public override string ToString() => "{{else}}";
}

/// <summary>A syntax or execution error at an offset of the template text; <see cref="GoTemplate"/> adds file, line and column.</summary>
internal sealed class TemplateSyntaxException(int pos, string message) : Exception(message)
{
    public int Pos { get; } = pos;
}

/// <summary>
/// Go <c>text/template/parse</c>: builds the trees of one template text — the main one and every
/// <c>{{define}}</c>/<c>{{block}}</c> — checking functions and variables as Go does at parse time.
/// </summary>
internal sealed class TemplateParser
{
    private readonly List<Token> _tokens;
    private readonly Func<string, bool> _hasFunction;
    private readonly Dictionary<string, ListNode> _trees;
    private List<string> _vars = ["$"];
    private int _rangeDepth;
    private int _i;

    private TemplateParser(List<Token> tokens, Func<string, bool> hasFunction, Dictionary<string, ListNode> trees)
    {
        _tokens = tokens;
        _hasFunction = hasFunction;
        _trees = trees;
    }

    /// <summary>Parses <paramref name="text"/> into <paramref name="trees"/> under <paramref name="name"/> and any defined names.</summary>
    public static void Parse(string name, string text, Func<string, bool> hasFunction, Dictionary<string, ListNode> trees)
    {
        var parser = new TemplateParser(TemplateLexer.Lex(text), hasFunction, trees);
        var root = new ListNode(0, []);
        while (parser.Peek().Kind != TokenKind.Eof)
        {
            if (parser.Peek().Kind == TokenKind.LeftDelim)
            {
                var save = parser._i;
                parser.Next();
                if (parser.NextNonSpace() is { Kind: TokenKind.Keyword, Text: "define" })
                {
                    parser.ParseDefinition();
                    continue;
                }

                parser._i = save;
            }

            var node = parser.TextOrAction();
            if (node is EndNode or ElseNode)
            {
                throw new TemplateSyntaxException(node.Pos, $"unexpected {node}");
            }

            root.Nodes.Add(node);
        }

        parser.Add(name, root);
    }

    private static bool IsEmptyTree(ListNode list) =>
        list.Nodes.All(n => n is TextNode t ? string.IsNullOrWhiteSpace(t.Text) : n is ListNode l && IsEmptyTree(l));

    private void Add(string name, ListNode root)
    {
        if (!_trees.TryGetValue(name, out var existing) || IsEmptyTree(existing))
        {
            _trees[name] = root;
        }
        else if (!IsEmptyTree(root))
        {
            throw new TemplateSyntaxException(root.Pos, $"template: multiple definition of template \"{name}\"");
        }
    }

    private Token Peek() => _tokens[Math.Min(_i, _tokens.Count - 1)];

    private Token Next() => _tokens[Math.Min(_i++, _tokens.Count - 1)];

    private void Backup() => _i--;

    private Token NextNonSpace()
    {
        var t = Next();
        while (t.Kind == TokenKind.Space)
        {
            t = Next();
        }

        return t;
    }

    private Token PeekNonSpace()
    {
        var t = NextNonSpace();
        Backup();
        return t;
    }

    private Token Expect(TokenKind kind, string context)
    {
        var t = NextNonSpace();
        if (t.Kind != kind)
        {
            throw Unexpected(t, context);
        }

        return t;
    }

    private static TemplateSyntaxException Unexpected(Token t, string context) =>
        new(t.Pos, $"unexpected {t} in {context}");

    private void ParseDefinition()
    {
        const string Context = "define clause";
        var nameToken = NextNonSpace();
        if (nameToken.Kind is not (TokenKind.String or TokenKind.RawString))
        {
            throw Unexpected(nameToken, Context);
        }

        var name = TemplateLexer.Unquote(nameToken.Text) ?? throw new TemplateSyntaxException(nameToken.Pos, "invalid syntax");
        Expect(TokenKind.RightDelim, Context);
        var outerVars = _vars;
        _vars = ["$"];
        var (list, end) = ItemList();
        if (end is not EndNode)
        {
            throw new TemplateSyntaxException(end.Pos, $"unexpected {end} in {Context}");
        }

        _vars = outerVars;
        Add(name, list);
    }

    private (ListNode List, TemplateNode End) ItemList()
    {
        var list = new ListNode(Peek().Pos, []);
        while (PeekNonSpace().Kind != TokenKind.Eof)
        {
            var node = TextOrAction();
            if (node is EndNode or ElseNode)
            {
                return (list, node);
            }

            list.Nodes.Add(node);
        }

        throw new TemplateSyntaxException(Peek().Pos, "unexpected EOF");
    }

    private TemplateNode TextOrAction()
    {
        var t = NextNonSpace();
        return t.Kind switch
        {
            TokenKind.Text => new TextNode(t.Pos, t.Text),
            TokenKind.Comment => new ListNode(t.Pos, []),
            TokenKind.LeftDelim => Action(),
            _ => throw Unexpected(t, "input"),
        };
    }

    private TemplateNode Action()
    {
        var t = NextNonSpace();
        if (t.Kind == TokenKind.Keyword)
        {
            switch (t.Text)
            {
                case "block":
                    return BlockControl(t);
                case "break" or "continue":
                    if (_rangeDepth == 0)
                    {
                        throw new TemplateSyntaxException(t.Pos, $"{{{{{t.Text}}}}} outside {{{{range}}}}");
                    }

                    Expect(TokenKind.RightDelim, t.Text);
                    return t.Text == "break" ? new BreakNode(t.Pos) : new ContinueNode(t.Pos);
                case "else":
                    var peek = PeekNonSpace();
                    if (peek is { Kind: TokenKind.Keyword, Text: "if" or "with" })
                    {
                        return new ElseNode(t.Pos);
                    }

                    Expect(TokenKind.RightDelim, "else");
                    return new ElseNode(t.Pos);
                case "end":
                    Expect(TokenKind.RightDelim, "end");
                    return new EndNode(t.Pos);
                case "if":
                    return Control(ControlKind.If, t.Pos);
                case "range":
                    return Control(ControlKind.Range, t.Pos);
                case "with":
                    return Control(ControlKind.With, t.Pos);
                case "template":
                    return TemplateControl();
            }
        }

        Backup();
        var pos = Peek().Pos;
        return new ActionNode(pos, Pipeline("command", TokenKind.RightDelim));
    }

    private ControlNode Control(ControlKind kind, int pos)
    {
        var context = kind.ToString().ToLowerInvariant();
        var mark = _vars.Count;
        try
        {
            var pipe = Pipeline(context, TokenKind.RightDelim);
            if (kind == ControlKind.Range)
            {
                _rangeDepth++;
            }

            var (list, next) = ItemList();
            if (kind == ControlKind.Range)
            {
                _rangeDepth--;
            }

            ListNode? elseList = null;
            if (next is ElseNode)
            {
                var peek = PeekNonSpace();
                if (kind != ControlKind.Range && peek.Kind == TokenKind.Keyword && peek.Text == context)
                {
                    // {{else if x}} / {{else with x}}: a nested control that consumes the shared {{end}}.
                    NextNonSpace();
                    elseList = new ListNode(peek.Pos, [Control(kind, peek.Pos)]);
                }
                else
                {
                    (elseList, next) = ItemList();
                    if (next is not EndNode)
                    {
                        throw new TemplateSyntaxException(next.Pos, $"expected end; found {next}");
                    }
                }
            }

            return new ControlNode(pos, kind, pipe, list, elseList);
        }
        finally
        {
            _vars.RemoveRange(mark, _vars.Count - mark);
        }
    }

    private TemplateCallNode TemplateControl()
    {
        const string Context = "template clause";
        var nameToken = NextNonSpace();
        var name = ParseTemplateName(nameToken, Context);
        PipeNode? pipe = null;
        if (NextNonSpace().Kind != TokenKind.RightDelim)
        {
            Backup();
            pipe = Pipeline(Context, TokenKind.RightDelim);
        }

        return new TemplateCallNode(nameToken.Pos, name, pipe);
    }

    private TemplateCallNode BlockControl(Token blockToken)
    {
        const string Context = "block clause";
        var nameToken = NextNonSpace();
        var name = ParseTemplateName(nameToken, Context);
        var pipe = Pipeline(Context, TokenKind.RightDelim);
        var outerVars = _vars;
        var outerRange = _rangeDepth;
        _vars = ["$"];
        _rangeDepth = 0;
        var (list, end) = ItemList();
        if (end is not EndNode)
        {
            throw new TemplateSyntaxException(end.Pos, $"unexpected {end} in {Context}");
        }

        _vars = outerVars;
        _rangeDepth = outerRange;
        Add(name, list);
        return new TemplateCallNode(blockToken.Pos, name, pipe);
    }

    private static string ParseTemplateName(Token token, string context)
    {
        if (token.Kind is TokenKind.String or TokenKind.RawString)
        {
            return TemplateLexer.Unquote(token.Text) ?? throw new TemplateSyntaxException(token.Pos, "invalid syntax");
        }

        throw Unexpected(token, context);
    }

    private PipeNode Pipeline(string context, TokenKind end)
    {
        var pipe = new PipeNode(PeekNonSpace().Pos, false, [], []);
        var isAssign = false;
        while (PeekNonSpace().Kind == TokenKind.Variable)
        {
            var start = _i;
            var v = NextNonSpace();
            var next = PeekNonSpace();
            if (next.Kind is TokenKind.Assign or TokenKind.Declare)
            {
                isAssign = next.Kind == TokenKind.Assign;
                NextNonSpace();
                pipe.Decl.Add(new VariableNode(v.Pos, [v.Text]));
                _vars.Add(v.Text);
                break;
            }

            if (next is { Kind: TokenKind.Char, Text: "," })
            {
                NextNonSpace();
                pipe.Decl.Add(new VariableNode(v.Pos, [v.Text]));
                _vars.Add(v.Text);
                if (context == "range" && pipe.Decl.Count < 2)
                {
                    if (PeekNonSpace().Kind is TokenKind.Variable or TokenKind.RightDelim or TokenKind.RightParen)
                    {
                        continue;
                    }

                    throw new TemplateSyntaxException(next.Pos, "range can only initialize variables");
                }

                throw new TemplateSyntaxException(next.Pos, $"too many declarations in {context}");
            }

            _i = start;
            break;
        }

        pipe = pipe with { IsAssign = isAssign };
        while (true)
        {
            var t = NextNonSpace();
            if (t.Kind == end)
            {
                if (pipe.Cmds.Count == 0)
                {
                    throw new TemplateSyntaxException(t.Pos, $"missing value for {context}");
                }

                for (var i = 1; i < pipe.Cmds.Count; i++)
                {
                    if (pipe.Cmds[i].Args[0] is BoolNode or DotNode or NilNode or NumberNode or StringNode)
                    {
                        throw new TemplateSyntaxException(pipe.Cmds[i].Pos, $"non executable command in pipeline stage {i + 1}");
                    }
                }

                return pipe;
            }

            switch (t.Kind)
            {
                case TokenKind.Bool or TokenKind.CharConstant or TokenKind.Dot or TokenKind.Field or TokenKind.Identifier
                    or TokenKind.Number or TokenKind.String or TokenKind.RawString or TokenKind.Variable or TokenKind.LeftParen:
                    Backup();
                    pipe.Cmds.Add(Command());
                    break;
                case TokenKind.Keyword when t.Text == "nil":
                    Backup();
                    pipe.Cmds.Add(Command());
                    break;
                default:
                    throw Unexpected(t, context);
            }
        }
    }

    private CommandNode Command()
    {
        var cmd = new CommandNode(PeekNonSpace().Pos, []);
        while (true)
        {
            PeekNonSpace();
            if (Operand() is { } operand)
            {
                cmd.Args.Add(operand);
            }

            var t = Next();
            if (t.Kind == TokenKind.Space)
            {
                continue;
            }

            if (t.Kind is TokenKind.RightDelim or TokenKind.RightParen)
            {
                Backup();
            }
            else if (t.Kind != TokenKind.Pipe)
            {
                throw Unexpected(t, "operand");
            }

            break;
        }

        if (cmd.Args.Count == 0)
        {
            throw new TemplateSyntaxException(cmd.Pos, "empty command");
        }

        return cmd;
    }

    private TemplateNode? Operand()
    {
        var node = Term();
        if (node is null || Peek().Kind != TokenKind.Field)
        {
            return node;
        }

        var pos = Peek().Pos;
        var fields = new List<string>();
        while (Peek().Kind == TokenKind.Field)
        {
            fields.Add(Next().Text[1..]);
        }

        return node switch
        {
            FieldNode f => new FieldNode(f.Pos, [.. f.Idents, .. fields]),
            VariableNode v => new VariableNode(v.Pos, [.. v.Idents, .. fields]),
            BoolNode or StringNode or NumberNode or NilNode or DotNode => throw new TemplateSyntaxException(pos, $"unexpected . after term \"{node}\""),
            _ => new ChainNode(pos, node, [.. fields]),
        };
    }

    private TemplateNode? Term()
    {
        var t = NextNonSpace();
        switch (t.Kind)
        {
            case TokenKind.Identifier:
                if (!_hasFunction(t.Text))
                {
                    throw new TemplateSyntaxException(t.Pos, $"function \"{t.Text}\" not defined");
                }

                return new IdentifierNode(t.Pos, t.Text);
            case TokenKind.Dot:
                return new DotNode(t.Pos);
            case TokenKind.Keyword when t.Text == "nil":
                return new NilNode(t.Pos);
            case TokenKind.Variable:
                if (!_vars.Contains(t.Text))
                {
                    throw new TemplateSyntaxException(t.Pos, $"undefined variable \"{t.Text}\"");
                }

                return new VariableNode(t.Pos, [t.Text]);
            case TokenKind.Field:
                return new FieldNode(t.Pos, [t.Text[1..]]);
            case TokenKind.Bool:
                return new BoolNode(t.Pos, t.Text == "true");
            case TokenKind.Number:
                return new NumberNode(t.Pos, TemplateNumber.Parse(t.Text)!, t.Text);
            case TokenKind.CharConstant:
                var ch = TemplateLexer.Unquote(t.Text);
                if (ch is null || ch.EnumerateRunes().Count() != 1)
                {
                    throw new TemplateSyntaxException(t.Pos, $"malformed character constant: {t.Text}");
                }

                return new NumberNode(t.Pos, (long)ch.EnumerateRunes().First().Value, t.Text);
            case TokenKind.LeftParen:
                return Pipeline("parenthesized pipeline", TokenKind.RightParen);
            case TokenKind.String or TokenKind.RawString:
                var s = TemplateLexer.Unquote(t.Text) ?? throw new TemplateSyntaxException(t.Pos, "invalid syntax");
                return new StringNode(t.Pos, t.Text, s);
        }

        Backup();
        return null;
    }
}
