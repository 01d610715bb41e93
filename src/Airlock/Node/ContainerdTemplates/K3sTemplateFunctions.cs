using Airlock.GoCompat;

namespace Airlock.Node.ContainerdTemplates;

/// <summary>
/// What a K3s containerd template can call: Go's builtins and the functions K3s registers for its Linux
/// templates (pkg/agent/templates, templates_linux.go).
/// </summary>
internal static class K3sTemplateFunctions
{
    public static readonly IReadOnlyDictionary<string, TemplateFunction> All = TemplateFunctions.With(
    [
        // deschemify is the identity on Linux (it strips npipe:// on Windows).
        new("deschemify", [ParamKind.String], null, a => a[0]),
        new("toJson", [ParamKind.Any], null, a => GoFormat.Json(a[0])),
        new("filepathjoin", [], ParamKind.String, a => TemplateFunctions.FilepathJoin(a.Cast<string>())),
    ]);
}
