namespace Airlock.Cluster.Pki;

/// <summary>The server's own certificates, each reissued on its own by <c>airlock certificate rotate --service NAME</c>.</summary>
public enum ClusterService
{
    /// <summary>Serving certificate of the supervisor API (<c>--listen</c>).</summary>
    Supervisor,

    /// <summary>Serving certificate of the embedded registry (<c>--embedded-registry</c>).</summary>
    Registry,

    /// <summary>Serving certificate of the server's peer mirror.</summary>
    Peer,

    /// <summary>Client certificate of the operator (<c>system:admin</c>): pushes into the embedded registry, reads the API.</summary>
    Admin,
}

/// <summary>Names and files of <see cref="ClusterService"/>s.</summary>
public static class ClusterServices
{
    public static IReadOnlyList<ClusterService> All { get; } = Enum.GetValues<ClusterService>();

    /// <summary>The name <c>--service</c> takes: <c>supervisor</c>, <c>registry</c>, <c>peer</c>, <c>admin</c>.</summary>
    public static string Name(this ClusterService service) => service switch
    {
        ClusterService.Supervisor => "supervisor",
        ClusterService.Registry => "registry",
        ClusterService.Peer => "peer",
        _ => "admin",
    };

    /// <summary>The file name without extension under <c>server/tls</c>.</summary>
    public static string FileStem(this ClusterService service) => service == ClusterService.Admin ? "client-admin" : service.Name();

    public static bool IsClient(this ClusterService service) => service == ClusterService.Admin;

    /// <summary>Parses a <c>--service</c> list (<c>supervisor,registry</c>); every unknown name is reported at once.</summary>
    public static IReadOnlyList<ClusterService> Parse(IEnumerable<string> names, out IReadOnlyList<string> unknown)
    {
        var services = new List<ClusterService>();
        var bad = new List<string>();
        foreach (var name in names.SelectMany(n => n.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            var match = All.Where(s => s.Name() == name).Select(s => (ClusterService?)s).FirstOrDefault();
            if (match is { } service)
            {
                if (!services.Contains(service))
                {
                    services.Add(service);
                }
            }
            else
            {
                bad.Add(name);
            }
        }

        unknown = bad;
        return services;
    }
}
