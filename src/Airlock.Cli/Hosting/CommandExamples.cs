using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Runtime.CompilerServices;

namespace Airlock.Cli.Hosting;

/// <summary>
/// Adds an "Examples:" section to <c>--help</c>, which System.CommandLine does not have. Every verb
/// registers its examples with <see cref="WithExamples{T}"/>.
/// </summary>
internal static class CommandExamples
{
    private static readonly ConditionalWeakTable<Command, string[]> Examples = new();

    public static T WithExamples<T>(this T command, params string[] examples)
        where T : Command
    {
        Examples.AddOrUpdate(command, examples);
        return command;
    }

    public static IReadOnlyList<string> For(Command command) =>
        Examples.TryGetValue(command, out var examples) ? examples : [];

    public static void InstallHelp(RootCommand root)
    {
        var help = root.Options.OfType<HelpOption>().Single();
        if (help.Action is HelpAction defaultHelp)
        {
            help.Action = new ExamplesHelpAction(defaultHelp);
        }
    }

    private sealed class ExamplesHelpAction(HelpAction inner) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var result = inner.Invoke(parseResult);
            var examples = For(parseResult.CommandResult.Command);
            if (examples.Count > 0)
            {
                var output = parseResult.InvocationConfiguration.Output;
                output.WriteLine("Examples:");
                foreach (var example in examples)
                {
                    output.WriteLine($"  {example}");
                }

                output.WriteLine();
            }

            return result;
        }
    }
}
