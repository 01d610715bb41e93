using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Airlock.Tests.Architecture;

/// <summary>One folder of <c>src/Airlock</c> naming something of another: where, and what.</summary>
/// <param name="From">The folder of the file that names it, e.g. <c>Registry/PullThrough</c>.</param>
/// <param name="To">The folder of the namespace named, e.g. <c>Remote</c>.</param>
/// <param name="Where">File and line, e.g. <c>Registry/PullThrough/PullThroughCache.cs:12</c>.</param>
/// <param name="What">The name as written and what it resolved to.</param>
internal sealed record FolderDependency(string From, string To, string Where, string What);

/// <summary>
/// Reads which folder of the library uses which, from the source: every name in every file (using directives,
/// <c>global using</c>, fully qualified <c>Airlock.X.</c> names, and plain names of types the file sees through its
/// usings or through its enclosing namespaces, which C# makes visible without a using) is bound by the C# compiler, and
/// a name that resolves to a namespace, type or member of <c>Airlock.*</c> is a dependency on that namespace's folder.
/// Namespace = folder (<c>Airlock.Registry.PullThrough</c> is <c>Registry/PullThrough</c>); a file whose namespace is
/// not its folder is reported as such.
/// </summary>
internal static class SourceDependencies
{
    // What the SDK's ImplicitUsings adds to every file (obj/*.GlobalUsings.g.cs); none of it is Airlock's.
    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;

    private static readonly Lazy<MetadataReference[]> Framework = new(() =>
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Where(path => Path.GetFileNameWithoutExtension(path) is not ("Airlock.Core" or "airlock" or "Airlock.Tests"))
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToArray());

    /// <summary>The files of <paramref name="root"/> (<c>src/Airlock</c>), each as its path below the root and its text.</summary>
    public static IReadOnlyList<(string Path, string Text)> ReadTree(string root) =>
        Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Select(file => Path.GetRelativePath(root, file).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(path => !path.StartsWith("obj/", StringComparison.Ordinal) && !path.StartsWith("bin/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(path => (path, File.ReadAllText(Path.Combine(root, path))))
            .ToList();

    /// <summary>The folder a file lives in (<c>""</c> for the root).</summary>
    public static string FolderOf(string path) => path.Contains('/', StringComparison.Ordinal) ? path[..path.LastIndexOf('/')] : string.Empty;

    /// <summary>The folder of a namespace below <c>Airlock</c>; null for namespaces that are not the library's.</summary>
    public static string? FolderOfNamespace(string ns) =>
        ns.StartsWith("Airlock.", StringComparison.Ordinal) ? ns["Airlock.".Length..].Replace('.', '/') : null;

    /// <summary>
    /// Every dependency between different folders, and the problems found on the way (a namespace that is not
    /// its folder).
    /// </summary>
    public static (IReadOnlyList<FolderDependency> Dependencies, IReadOnlyList<string> Problems) Read(IReadOnlyList<(string Path, string Text)> sources)
    {
        var options = new CSharpParseOptions(LanguageVersion.Preview);
        var trees = sources.Select(source => CSharpSyntaxTree.ParseText(source.Text, options, source.Path)).ToList();
        var compilation = CSharpCompilation.Create(
            "LayeringCheck",
            [.. trees, CSharpSyntaxTree.ParseText(ImplicitUsings, options, "ImplicitUsings.g.cs")],
            Framework.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, allowUnsafe: true, nullableContextOptions: NullableContextOptions.Enable));

        // Binding every name of 25,000 lines costs a minute; only names that can resolve to the library's own symbols
        // are bound: those in using directives, qualified names from Airlock, and names the library declares as types or
        // extension methods (an extension method is found through a using or an enclosing namespace, like a type).
        var libraryNames = trees.SelectMany(tree => tree.GetCompilationUnitRoot().DescendantNodes())
            .Select(node => node switch
            {
                BaseTypeDeclarationSyntax type => type.Identifier.ValueText,
                DelegateDeclarationSyntax type => type.Identifier.ValueText,
                MethodDeclarationSyntax method when method.ParameterList.Parameters.FirstOrDefault()?.Modifiers.Any(SyntaxKind.ThisKeyword) == true => method.Identifier.ValueText,
                _ => null,
            })
            .OfType<string>()
            .Append("Airlock")
            .ToHashSet(StringComparer.Ordinal);

        var dependencies = new List<FolderDependency>();
        var problems = new List<string>();
        foreach (var tree in trees)
        {
            var from = FolderOf(tree.FilePath);
            var root = tree.GetCompilationUnitRoot();
            foreach (var declared in root.DescendantNodes().OfType<BaseNamespaceDeclarationSyntax>())
            {
                var folder = FolderOfNamespace(declared.Name.ToString());
                if (folder != from)
                {
                    problems.Add($"{tree.FilePath}: namespace {declared.Name} is not its folder (namespace = folder: Airlock.{from.Replace('/', '.')})");
                }
            }

            var model = compilation.GetSemanticModel(tree);
            foreach (var name in root.DescendantNodes().OfType<SimpleNameSyntax>())
            {
                if (!libraryNames.Contains(name.Identifier.ValueText) && !name.Ancestors().Any(a => a is UsingDirectiveSyntax))
                {
                    continue;
                }

                if (name.Ancestors().Any(a => a is BaseNamespaceDeclarationSyntax declaration && declaration.Name.Span.Contains(name.Span)))
                {
                    continue;
                }

                var info = model.GetSymbolInfo(name);
                var symbol = info.Symbol ?? info.CandidateSymbols.FirstOrDefault();

                // Airlock and Registry in Airlock.Registry.Auth are namespaces the name passes through: what it ends in counts.
                if (symbol is INamespaceSymbol && IsLeftPart(name))
                {
                    continue;
                }

                if (NamespaceOf(symbol) is not { } ns || FolderOfNamespace(ns) is not { } to || to == from)
                {
                    continue;
                }

                var line = name.GetLocation().GetLineSpan().StartLinePosition.Line + 1;
                var written = name.Parent is QualifiedNameSyntax or MemberAccessExpressionSyntax or AliasQualifiedNameSyntax ? name.Parent.ToString() : name.ToString();
                dependencies.Add(new FolderDependency(from, to, $"{tree.FilePath}:{line}", $"{written} ({symbol!.ToDisplayString()})"));
            }
        }

        return (dependencies, problems);
    }

    /// <summary>True for a name (or the qualified name it ends) that something more is qualified with: <c>Registry</c> in <c>Airlock.Registry.Auth</c>.</summary>
    private static bool IsLeftPart(SimpleNameSyntax name)
    {
        SyntaxNode node = name;
        while (node.Parent is QualifiedNameSyntax qualified && qualified.Right == node || node.Parent is MemberAccessExpressionSyntax access && access.Name == node)
        {
            node = node.Parent;
        }

        return node.Parent switch
        {
            QualifiedNameSyntax qualified => qualified.Left == node,
            MemberAccessExpressionSyntax access => access.Expression == node,
            AliasQualifiedNameSyntax alias => alias.Alias == node,
            _ => false,
        };
    }

    /// <summary>The namespace a symbol belongs to: its own for a namespace, its type's for a type or member; null for locals and the like.</summary>
    private static string? NamespaceOf(ISymbol? symbol) => symbol switch
    {
        null or ILocalSymbol or IParameterSymbol or ITypeParameterSymbol or IRangeVariableSymbol or ILabelSymbol or IDiscardSymbol => null,
        INamespaceSymbol ns => ns.ToDisplayString(),
        IAliasSymbol alias => NamespaceOf(alias.Target),
        INamedTypeSymbol type => type.OriginalDefinition.ContainingNamespace?.ToDisplayString(),
        IArrayTypeSymbol array => NamespaceOf(array.ElementType),
        _ => symbol.ContainingType is { } type ? NamespaceOf(type) : symbol.ContainingNamespace?.ToDisplayString(),
    };
}
