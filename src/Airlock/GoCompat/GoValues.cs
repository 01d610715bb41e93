namespace Airlock.GoCompat;

/// <summary>
/// The Go values a template sees, modelled closely enough that truthiness, field access, printing, <c>index</c>,
/// <c>len</c> and <c>toJson</c> behave as Go's <c>text/template</c> does on K3s's data. Strings, <see cref="bool"/>,
/// <see cref="long"/> (Go <c>int</c>) and <see cref="double"/> stand for themselves; <c>null</c> is an untyped nil.
/// </summary>
internal static class GoValue
{
    /// <summary>Go's invalid <c>reflect.Value</c>: what a missing map key yields; prints as <c>&lt;no value&gt;</c>.</summary>
    public static readonly object Missing = new MissingValue();

    public static string TypeName(object? value) => value switch
    {
        null => "<nil>",
        string => "string",
        bool => "bool",
        long => "int",
        double => "float64",
        GoStruct s => s.TypeName,
        GoPointer p => p.TypeName,
        GoMap m => m.TypeName,
        GoSlice s => s.TypeName,
        _ when value == Missing => "<invalid>",
        _ => value.GetType().Name,
    };

    /// <summary>Go's <c>truth</c>: false for the zero value of the type (empty string, 0, nil, empty map or slice).</summary>
    public static bool IsTrue(object? value) => value switch
    {
        null => false,
        string s => s.Length > 0,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        GoPointer p => p.Target is not null,
        GoMap m => m.Count > 0,
        GoSlice s => s.Count > 0,
        GoStruct => true,
        _ => false, // Missing
    };

    /// <summary>Follows a non-nil pointer to its struct (Go's <c>indirect</c>); anything else is returned as is.</summary>
    public static object? Indirect(object? value) => value is GoPointer { Target: { } target } ? target : value;
}

internal sealed class MissingValue
{
    public override string ToString() => "<no value>";
}

/// <summary>A struct value: its Go type name (<c>config.Node</c>) and exported fields in declaration order.</summary>
internal sealed class GoStruct
{
    private readonly Dictionary<string, GoField> _byName;

    public GoStruct(string typeName, IReadOnlyList<GoField> fields)
    {
        TypeName = typeName;
        Fields = fields;
        _byName = fields.ToDictionary(f => f.Name, StringComparer.Ordinal);
    }

    public string TypeName { get; }

    public IReadOnlyList<GoField> Fields { get; }

    public bool TryGetField(string name, out GoField field) => _byName.TryGetValue(name, out field!);
}

/// <summary>A struct field; <see cref="JsonName"/> and <see cref="OmitEmpty"/> are its <c>json:"…"</c> tag.</summary>
internal sealed record GoField(string Name, object? Value, string? JsonName = null, bool OmitEmpty = false);

/// <summary>A pointer to a struct; <see cref="Target"/> null is a typed nil pointer (<c>*registries.TLSConfig</c>).</summary>
internal sealed record GoPointer(string TypeName, GoStruct? Target)
{
    /// <summary>Field names of the pointed-to type, so a nil pointer can tell "nil pointer" from "no such field".</summary>
    public IReadOnlySet<string> FieldNames { get; init; } = Target?.Fields.Select(f => f.Name).ToHashSet(StringComparer.Ordinal) ?? new HashSet<string>();

    public static GoPointer To(GoStruct target) => new("*" + target.TypeName, target);

    public static GoPointer Nil(string typeName, params string[] fieldNames) =>
        new("*" + typeName, null) { FieldNames = fieldNames.ToHashSet(StringComparer.Ordinal) };
}

/// <summary>A <c>map[string]T</c>; <see cref="Entries"/> null is a nil map. Keys iterate sorted, as Go's templates do.</summary>
internal sealed class GoMap
{
    public GoMap(string typeName, IEnumerable<KeyValuePair<string, object?>>? entries, object? elementZero)
    {
        TypeName = typeName;
        ElementZero = elementZero;
        if (entries is not null)
        {
            Entries = new SortedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in entries)
            {
                Entries[key] = value;
            }
        }
    }

    public string TypeName { get; }

    public SortedDictionary<string, object?>? Entries { get; }

    /// <summary>The element type's zero value, which <c>index</c> returns for a missing key.</summary>
    public object? ElementZero { get; }

    public int Count => Entries?.Count ?? 0;
}

/// <summary>A <c>[]T</c>; <see cref="Items"/> null is a nil slice.</summary>
internal sealed class GoSlice(string typeName, IReadOnlyList<object?>? items)
{
    public string TypeName { get; } = typeName;

    public IReadOnlyList<object?>? Items { get; } = items;

    public int Count => Items?.Count ?? 0;
}
