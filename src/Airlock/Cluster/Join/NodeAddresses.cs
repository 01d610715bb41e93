using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Airlock.Cluster.Join;

/// <summary>
/// The address a node registers when <c>--node-ip</c> is not given, as K3s picks it: the address of the interface that holds
/// the default route, else the host's only non-loopback address; with several and no default route the operator must say.
/// </summary>
public static class NodeAddresses
{
    /// <summary>The default address(es), or an error naming the candidates.</summary>
    public static IReadOnlyList<IPAddress> Default()
    {
        var interfaces = NetworkInterface.GetAllNetworkInterfaces()
            .Where(i => i.OperationalStatus is OperationalStatus.Up or OperationalStatus.Unknown && i.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .ToList();
        if (DefaultRouteInterface() is { } name && interfaces.FirstOrDefault(i => i.Name == name) is { } routed)
        {
            var addresses = Usable(routed).ToList();
            if (addresses.Count > 0)
            {
                return addresses.OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).Take(1).ToList();
            }
        }

        var all = interfaces.SelectMany(Usable).Distinct().ToList();
        return all.Count switch
        {
            1 => all,
            0 => throw new InvalidOperationException("this host has no address other than loopback: give the node's address with --node-ip"),
            _ => throw new InvalidOperationException($"this host has no default route and several addresses ({string.Join(", ", all)}): "
                + "say which one other nodes reach it at with --node-ip"),
        };
    }

    private static IEnumerable<IPAddress> Usable(NetworkInterface networkInterface) =>
        networkInterface.GetIPProperties().UnicastAddresses
            .Select(a => a.Address)
            .Where(a => !IPAddress.IsLoopback(a) && !a.IsIPv6LinkLocal);

    /// <summary>The interface of the IPv4 default route (<c>/proc/net/route</c>, destination 0 with mask 0), or null.</summary>
    private static string? DefaultRouteInterface()
    {
        const string Routes = "/proc/net/route";
        if (!File.Exists(Routes))
        {
            return null;
        }

        foreach (var line in File.ReadLines(Routes).Skip(1))
        {
            var fields = line.Split('\t', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (fields.Length > 7 && fields[1] == "00000000" && fields[7] == "00000000"
                && int.TryParse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var flags) && (flags & 1) != 0)
            {
                return fields[0];
            }
        }

        return null;
    }
}
