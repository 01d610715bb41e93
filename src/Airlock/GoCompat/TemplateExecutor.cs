using System.Globalization;
using System.Text;

namespace Airlock.GoCompat;

/// <summary>
/// Go <c>text/template</c>'s <c>exec.go</c> over <see cref="GoValue"/> data: pipelines, variables and their scopes,
/// if/with/range (with break/continue), template calls, field chains and function calls with Go's argument rules.
/// Errors are thrown as <see cref="TemplateSyntaxException"/> at the node that failed.
/// </summary>
internal sealed class TemplateExecutor
{
    public const int MaxDepth = 1000;
    public const int MaxOutputChars = 16 * 1024 * 1024;

    private readonly IReadOnlyDictionary<string, ListNode> _trees;
    private readonly IReadOnlyDictionary<string, TemplateFunction> _funcs;
    private readonly StringBuilder _out = new();
    private List<(string Name, object? Value)> _vars = [];
    private string _template = string.Empty;
    private int _depth;

    public TemplateExecutor(IReadOnlyDictionary<string, ListNode> trees, IReadOnlyDictionary<string, TemplateFunction> funcs)
    {
        _trees = trees;
        _funcs = funcs;
    }

    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    public string Execute(string name, object? data)
    {
        _template = name;
        _vars = [("$", data)];
        Walk(data, _trees[name]);
        return _out.ToString();
    }

    private TemplateSyntaxException Error(TemplateNode node, string message) =>
        new(node.Pos, node is ListNode or TextNode or ControlNode or TemplateCallNode or ActionNode
            ? $"executing \"{_template}\": {message}"
            : $"executing \"{_template}\" at <{node}>: {message}");

    private Flow Walk(object? dot, TemplateNode node)
    {
        switch (node)
        {
            case TextNode text:
                Write(node, text.Text);
                return Flow.Normal;
            case ListNode list:
                foreach (var child in list.Nodes)
                {
                    var flow = Walk(dot, child);
                    if (flow != Flow.Normal)
                    {
                        return flow;
                    }
                }

                return Flow.Normal;
            case ActionNode action:
                var value = EvalPipeline(dot, action.Pipe);
                if (action.Pipe.Decl.Count == 0)
                {
                    Write(node, GoFormat.Value(value is GoPointer { Target: { } target } ? target : value));
                }

                return Flow.Normal;
            case ControlNode { Kind: ControlKind.Range } range:
                return WalkRange(dot, range);
            case ControlNode control:
                var mark = _vars.Count;
                try
                {
                    var val = EvalPipeline(dot, control.Pipe);
                    if (GoValue.IsTrue(val))
                    {
                        return Walk(control.Kind == ControlKind.With ? val : dot, control.List);
                    }

                    return control.Else is not null ? Walk(dot, control.Else) : Flow.Normal;
                }
                finally
                {
                    Pop(mark);
                }

            case TemplateCallNode call:
                WalkTemplate(dot, call);
                return Flow.Normal;
            case BreakNode:
                return Flow.Break;
            case ContinueNode:
                return Flow.Continue;
            default:
                throw Error(node, $"unknown node: {node}");
        }
    }

    private void Write(TemplateNode node, string text)
    {
        if (_out.Length + text.Length > MaxOutputChars)
        {
            throw Error(node, string.Create(CultureInfo.InvariantCulture, $"output is larger than {MaxOutputChars / (1024 * 1024)} MiB"));
        }

        _out.Append(text);
    }

    private void Pop(int mark) => _vars.RemoveRange(mark, _vars.Count - mark);

    private Flow WalkRange(object? dot, ControlNode range)
    {
        var outer = _vars.Count;
        try
        {
            var val = GoValue.Indirect(EvalPipeline(dot, range.Pipe));
            var mark = _vars.Count;
            var ran = false;
            IEnumerable<(object? Key, object? Elem)> items = val switch
            {
                GoSlice slice => (slice.Items ?? []).Select((item, i) => ((object?)(long)i, item)),
                GoMap map => (map.Entries ?? []).Select(e => ((object?)e.Key, e.Value)),
                long n => LongRange(n),
                GoPointer { Target: null } => [],
                _ when val == GoValue.Missing || val is null => [],
                _ => throw Error(range, $"range can't iterate over {GoFormat.Value(val)}"),
            };
            foreach (var (key, elem) in items)
            {
                ran = true;
                SetRangeVars(range.Pipe, key, elem);
                try
                {
                    if (Walk(elem, range.List) == Flow.Break)
                    {
                        break;
                    }
                }
                finally
                {
                    Pop(mark);
                }
            }

            if (!ran && range.Else is not null)
            {
                Walk(dot, range.Else);
            }

            return Flow.Normal;
        }
        finally
        {
            Pop(outer);
        }
    }

    private static IEnumerable<(object? Key, object? Elem)> LongRange(long n)
    {
        for (var i = 0L; i < n; i++)
        {
            yield return (i, i);
        }
    }

    private void SetRangeVars(PipeNode pipe, object? key, object? elem)
    {
        if (pipe.Decl.Count == 0)
        {
            return;
        }

        if (pipe.IsAssign)
        {
            SetVar(pipe, pipe.Decl[0].Idents[0], pipe.Decl.Count > 1 ? key : elem);
            if (pipe.Decl.Count > 1)
            {
                SetVar(pipe, pipe.Decl[1].Idents[0], elem);
            }

            return;
        }

        // Declared variables were pushed by the pipeline: the top one is the element, the one below the key.
        _vars[^1] = (_vars[^1].Name, elem);
        if (pipe.Decl.Count > 1)
        {
            _vars[^2] = (_vars[^2].Name, key);
        }
    }

    private void WalkTemplate(object? dot, TemplateCallNode call)
    {
        if (!_trees.TryGetValue(call.Name, out var tree))
        {
            throw Error(call, $"template \"{call.Name}\" not defined");
        }

        if (_depth >= MaxDepth)
        {
            throw Error(call, string.Create(CultureInfo.InvariantCulture, $"exceeded maximum template depth ({MaxDepth})"));
        }

        var newDot = call.Pipe is null ? GoValue.Missing : EvalPipeline(dot, call.Pipe);
        var (vars, template) = (_vars, _template);
        _vars = [("$", newDot)];
        _template = call.Name;
        _depth++;
        try
        {
            Walk(newDot, tree);
        }
        finally
        {
            _depth--;
            (_vars, _template) = (vars, template);
        }
    }

    private object? EvalPipeline(object? dot, PipeNode pipe)
    {
        var value = GoValue.Missing;
        foreach (var cmd in pipe.Cmds)
        {
            value = EvalCommand(dot, cmd, value);
        }

        foreach (var variable in pipe.Decl)
        {
            if (pipe.IsAssign)
            {
                SetVar(variable, variable.Idents[0], value);
            }
            else
            {
                _vars.Add((variable.Idents[0], value));
            }
        }

        return value;
    }

    private void SetVar(TemplateNode node, string name, object? value)
    {
        for (var i = _vars.Count - 1; i >= 0; i--)
        {
            if (_vars[i].Name == name)
            {
                _vars[i] = (name, value);
                return;
            }
        }

        throw Error(node, $"undefined variable: {name}");
    }

    private object? VarValue(TemplateNode node, string name)
    {
        for (var i = _vars.Count - 1; i >= 0; i--)
        {
            if (_vars[i].Name == name)
            {
                return _vars[i].Value;
            }
        }

        throw Error(node, $"undefined variable: {name}");
    }

    private object? EvalCommand(object? dot, CommandNode cmd, object? final)
    {
        var first = cmd.Args[0];
        switch (first)
        {
            case FieldNode field:
                return EvalFieldChain(dot, dot, field, field.Idents, cmd.Args, final);
            case ChainNode chain:
                return EvalChainNode(dot, chain, cmd.Args, final);
            case IdentifierNode id:
                return EvalCall(dot, id, cmd.Args, final);
            case PipeNode pipe:
                NotAFunction(cmd.Args, final);
                return EvalPipeline(dot, pipe);
            case VariableNode variable:
                return EvalVariableNode(dot, variable, cmd.Args, final);
        }

        NotAFunction(cmd.Args, final);
        return first switch
        {
            BoolNode b => b.Value,
            DotNode => dot,
            NilNode => throw Error(first, "nil is not a command"),
            NumberNode n => n.Value,
            StringNode s => s.Value,
            _ => throw Error(first, $"can't evaluate command {first}"),
        };
    }

    private void NotAFunction(List<TemplateNode>? args, object? final)
    {
        if (args is { Count: > 1 } || final != GoValue.Missing)
        {
            throw Error(args![0], $"can't give argument to non-function {args[0]}");
        }
    }

    private object? EvalChainNode(object? dot, ChainNode chain, List<TemplateNode>? args, object? final)
    {
        if (chain.Node is NilNode)
        {
            throw Error(chain, $"indirection through explicit nil in {chain}");
        }

        var pipe = EvalArg(dot, null, chain.Node);
        return EvalFieldChain(dot, pipe, chain, chain.Fields, args, final);
    }

    private object? EvalVariableNode(object? dot, VariableNode variable, List<TemplateNode>? args, object? final)
    {
        var value = VarValue(variable, variable.Idents[0]);
        if (variable.Idents.Length == 1)
        {
            NotAFunction(args, final);
            return value;
        }

        return EvalFieldChain(dot, value, variable, variable.Idents[1..], args, final);
    }

    private object? EvalFieldChain(object? dot, object? receiver, TemplateNode node, string[] idents, List<TemplateNode>? args, object? final)
    {
        for (var i = 0; i < idents.Length - 1; i++)
        {
            receiver = EvalField(idents[i], node, null, GoValue.Missing, receiver);
        }

        return EvalField(idents[^1], node, args, final, receiver);
    }

    private object? EvalField(string name, TemplateNode node, List<TemplateNode>? args, object? final, object? receiver)
    {
        if (receiver is null || receiver == GoValue.Missing)
        {
            return GoValue.Missing;
        }

        var typeName = GoValue.TypeName(receiver);
        var hasArgs = args is { Count: > 1 } || final != GoValue.Missing;
        if (receiver is GoPointer pointer)
        {
            if (pointer.Target is null)
            {
                throw Error(node, pointer.FieldNames.Contains(name)
                    ? $"nil pointer evaluating {typeName}.{name}"
                    : $"can't evaluate field {name} in type {typeName}");
            }

            receiver = pointer.Target;
        }

        switch (receiver)
        {
            case GoStruct s when s.TryGetField(name, out var field):
                if (hasArgs)
                {
                    throw Error(node, $"{name} has arguments but cannot be invoked as function");
                }

                return field.Value;
            case GoMap map:
                if (hasArgs)
                {
                    throw Error(node, $"{name} is not a method but has arguments");
                }

                return map.Entries is not null && map.Entries.TryGetValue(name, out var value) ? value : GoValue.Missing;
            default:
                throw Error(node, $"can't evaluate field {name} in type {typeName}");
        }
    }

    private object? EvalCall(object? dot, IdentifierNode id, List<TemplateNode> args, object? final)
    {
        var fn = _funcs[id.Name];
        var argNodes = args.Skip(1).ToList();
        var numIn = argNodes.Count + (final != GoValue.Missing ? 1 : 0);
        var numFixed = fn.Fixed.Length;
        if (fn.Variadic is null ? numIn != numFixed : numIn < numFixed)
        {
            throw Error(id, string.Create(CultureInfo.InvariantCulture,
                $"wrong number of args for {fn.Name}: want {(fn.Variadic is null ? string.Empty : "at least ")}{numFixed} got {numIn}"));
        }

        if (fn.Name is "and" or "or")
        {
            object? v = GoValue.Missing;
            foreach (var arg in argNodes)
            {
                v = EvalArg(dot, ParamKind.Value, arg);
                if (GoValue.IsTrue(v) == (fn.Name == "or"))
                {
                    return v;
                }
            }

            return final != GoValue.Missing ? final : v;
        }

        var values = new List<object?>(numIn);
        for (var i = 0; i < argNodes.Count; i++)
        {
            values.Add(EvalArg(dot, i < numFixed ? fn.Fixed[i] : fn.Variadic, argNodes[i]));
        }

        if (final != GoValue.Missing)
        {
            var kind = fn.Variadic is not null && numIn - 1 >= numFixed ? fn.Variadic : fn.Fixed[numIn - 1];
            values.Add(Validate(id, final, kind));
        }

        try
        {
            return fn.Invoke(values);
        }
        catch (TemplateFunctionException ex)
        {
            throw Error(id, $"error calling {fn.Name}: {ex.Message}");
        }
    }

    private object? EvalArg(object? dot, ParamKind? kind, TemplateNode node)
    {
        switch (node)
        {
            case DotNode:
                return Validate(node, dot, kind);
            case NilNode:
                return kind == ParamKind.String ? throw Error(node, "cannot assign nil to string") : kind == ParamKind.Value ? GoValue.Missing : null;
            case FieldNode field:
                return Validate(node, EvalFieldChain(dot, dot, field, field.Idents, [node], GoValue.Missing), kind);
            case VariableNode variable:
                return Validate(node, EvalVariableNode(dot, variable, null, GoValue.Missing), kind);
            case PipeNode pipe:
                return Validate(node, EvalPipeline(dot, pipe), kind);
            case IdentifierNode id:
                return Validate(node, EvalCall(dot, id, [id], GoValue.Missing), kind);
            case ChainNode chain:
                return Validate(node, EvalChainNode(dot, chain, null, GoValue.Missing), kind);
        }

        if (kind == ParamKind.String)
        {
            return node is StringNode s ? s.Value : throw Error(node, $"expected string; found {node}");
        }

        return node switch
        {
            BoolNode b => b.Value,
            NumberNode n => n.Value,
            StringNode s => s.Value,
            _ => throw Error(node, $"can't handle {node} for arg"),
        };
    }

    private object? Validate(TemplateNode node, object? value, ParamKind? kind)
    {
        if (value == GoValue.Missing || value is null)
        {
            return kind switch
            {
                null => value,
                ParamKind.Value => GoValue.Missing,
                ParamKind.Any => null,
                _ => throw Error(node, "invalid value; expected string"),
            };
        }

        if (kind == ParamKind.String && value is not string)
        {
            throw Error(node, $"wrong type for value; expected string; got {GoValue.TypeName(value)}");
        }

        return value;
    }
}
