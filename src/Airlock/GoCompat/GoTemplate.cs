namespace Airlock.GoCompat;

/// <summary>A template that cannot be parsed or executed: <c>file:line:column: message</c> (column 1-based).</summary>
public sealed class GoTemplateException(string file, int line, int column, string problem)
    : Exception($"{file}:{line}:{column}: {problem}")
{
    public string File { get; } = file;

    public int Line { get; } = line;

    public int Column { get; } = column;

    /// <summary>The message without the position.</summary>
    public string Problem { get; } = problem;
}

/// <summary>
/// A Go <c>text/template</c> read from one file: its main template and every <c>{{define}}</c>/<c>{{block}}</c>,
/// plus literal templates added by name (K3s's <c>"base"</c>). Parse-time checks (undefined functions and
/// variables, unbalanced <c>{{end}}</c>) and execution errors are reported as <see cref="GoTemplateException"/>.
/// </summary>
internal sealed class GoTemplate
{
    private readonly string _file;
    private readonly string _text;
    private readonly Dictionary<string, ListNode> _trees = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, TemplateFunction> _funcs;

    private GoTemplate(string file, string text, IReadOnlyDictionary<string, TemplateFunction> funcs)
    {
        _file = file;
        _text = text;
        _funcs = funcs;
    }

    public string Name => _file;

    public static GoTemplate Parse(string file, string text, IReadOnlyDictionary<string, TemplateFunction>? funcs = null)
    {
        var template = new GoTemplate(file, text, funcs ?? TemplateFunctions.Builtins);
        try
        {
            TemplateParser.Parse(file, text, template._funcs.ContainsKey, template._trees);
        }
        catch (TemplateSyntaxException ex)
        {
            throw template.At(ex);
        }

        return template;
    }

    /// <summary>Adds (or replaces) a template whose body is <paramref name="text"/> verbatim, never parsed.</summary>
    public void AddLiteral(string name, string text)
    {
        _trees[name] = new ListNode(0, [new TextNode(0, text)]);
    }

    public string Execute(object? data)
    {
        try
        {
            return new TemplateExecutor(_trees, _funcs).Execute(_file, data);
        }
        catch (TemplateSyntaxException ex)
        {
            throw At(ex);
        }
    }

    private GoTemplateException At(TemplateSyntaxException ex)
    {
        var pos = Math.Clamp(ex.Pos, 0, _text.Length);
        var lineStart = pos == 0 ? -1 : _text.LastIndexOf('\n', pos - 1);
        var line = 1 + _text.AsSpan(0, pos).Count('\n');
        return new GoTemplateException(_file, line, pos - lineStart, ex.Message);
    }
}
