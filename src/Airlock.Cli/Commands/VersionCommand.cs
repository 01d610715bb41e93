using System.CommandLine;
using System.Reflection;
using Airlock.Cli.Hosting;

namespace Airlock.Cli.Commands;

internal static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Print Airlock's version.")
            .WithExamples("airlock version");
        command.SetAction(parseResult =>
        {
            var version = typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            parseResult.InvocationConfiguration.Output.WriteLine($"airlock {version}");
            return AirlockCli.ExitOk;
        });
        return command;
    }
}
