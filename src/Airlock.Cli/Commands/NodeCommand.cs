using System.CommandLine;
using System.Globalization;
using Airlock.Cli.Hosting;
using Airlock.Cluster;
using Airlock.Cluster.Membership;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock node list</c>: the cluster's members, read from the server's data directory.</summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var command = new Command("node", "The cluster's nodes (run on the server).");
        var dataDir = CommonOptions.DataDir();
        var output = CommonOptions.Output();
        var list = new Command("list", "List the nodes that joined this server: status (Ready while heartbeats arrive), role, addresses, version, "
            + "last heartbeat, labels and taints.")
        {
            dataDir, output,
        };
        list.WithExamples("airlock node list", "airlock node list --output json");
        list.SetAction(parseResult =>
        {
            var directory = new ServerDirectory(parseResult.GetValue(dataDir)!);
            if (!Directory.Exists(directory.Root))
            {
                throw new DirectoryNotFoundException($"{directory.Root} does not exist: run node list on the server, with its --data-dir");
            }

            var nodes = MembershipStore.Open(directory, TimeProvider.System).List();
            DataOutput.Write(parseResult.InvocationConfiguration.Output, parseResult.GetValue(output)!, nodes, MembershipJson.Default.IReadOnlyListClusterNode,
                ("NAME", n => n.Name),
                ("STATUS", n => n.Status.ToString()),
                ("ROLE", n => n.Role.ToString().ToLowerInvariant()),
                ("ADDRESSES", n => string.Join(',', n.Addresses)),
                ("VERSION", n => n.Version),
                ("LAST SEEN", n => n.LastSeen.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)),
                ("LABELS", n => string.Join(',', n.Labels.Select(l => $"{l.Key}={l.Value}"))),
                ("TAINTS", n => string.Join(',', n.Taints)));
            return AirlockCli.ExitOk;
        });
        command.Subcommands.Add(list);
        return command;
    }
}
