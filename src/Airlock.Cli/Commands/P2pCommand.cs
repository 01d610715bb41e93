using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Airlock.Cli.Hosting;
using Airlock.Cluster.Peers;
using Airlock.Node.Mirror;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock p2p status</c>: the peer-to-peer mirror of this node, asked through its node mirror on loopback.</summary>
internal static class P2pCommand
{
    public static Command Create()
    {
        var command = new Command("p2p", "The peer-to-peer mirror of this node (airlock agent --embedded-registry).");
        var address = MirrorCommand.AddressOption($"The node mirror's address (the agent's --mirror-address; default {MirrorCommand.DefaultAddress}).");
        var output = CommonOptions.Output();
        var status = new Command("status", "Peers (name, endpoint, state, how many blobs each holds and receives), what this node holds, where its blobs "
            + "came from (peers, registry, its own store), bytes served to peers, peer errors and the hit ratio.")
        {
            address, output,
        };
        status.WithExamples("airlock p2p status", "airlock p2p status --output json");
        status.SetAction(async (parseResult, cancellationToken) =>
        {
            var endpoint = MirrorCommand.ParseAddress(parseResult.GetValue(address)!);
            var url = new Uri($"http://{endpoint}{PeerStatus.Path}");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            HttpResponseMessage response;
            try
            {
                response = await http.GetAsync(url, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException ex)
            {
                throw new InvalidOperationException($"no node mirror answers at {endpoint} ({ex.Message}): is airlock agent running with --embedded-registry, and is --mirror-address its address?", ex);
            }

            using (response)
            {
                if (!response.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException($"the node mirror at {endpoint} answered HTTP {(int)response.StatusCode}: the agent runs without --embedded-registry");
                }

                var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                var value = JsonSerializer.Deserialize(body, PeerJson.Default.PeerStatus) ?? throw new InvalidDataException("the node mirror sent an empty status");
                Write(parseResult.InvocationConfiguration.Output, parseResult.GetValue(output)!, value);
            }

            return AirlockCli.ExitOk;
        });
        command.Subcommands.Add(status);
        return command;
    }

    private static void Write(TextWriter output, string format, PeerStatus status)
    {
        if (format is "json" or "yaml")
        {
            DataOutput.Write(output, format, status, PeerJson.Default.PeerStatus);
            return;
        }

        var c = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(c, $"node {status.Node}, peers reach it at {status.Endpoint}; holds {status.Holds} blobs, receiving {status.Receiving}"));
        output.WriteLine(string.Create(c, $"blobs from peers {status.BlobsFromPeers} ({status.BytesFromPeers} bytes), from the registry {status.BlobsFromRegistry} ({status.BytesFromRegistry} bytes), from its store {status.BlobsFromStore}"));
        output.WriteLine(string.Create(c, $"hit ratio {(status.HitRatio is { } ratio ? ratio.ToString("P0", c) : "-")}; served to peers {status.BytesServedToPeers} bytes; peer errors {status.PeerErrors}; peer requests refused {status.PeerRequestsRefused}"));
        output.WriteLine();
        DataOutput.WriteTable(output, status.Peers,
            ("PEER", p => p.Name),
            ("ENDPOINT", p => p.Endpoint ?? "-"),
            ("STATE", p => p.State),
            ("HOLDS", p => p.Holds.ToString(c)),
            ("RECEIVING", p => p.Receiving.ToString(c)));
    }
}
