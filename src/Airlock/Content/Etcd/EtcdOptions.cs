using System.Globalization;
using Airlock.Tls;

namespace Airlock.Content.Etcd;

/// <summary>
/// Where a store keeps its metadata in etcd: <c>--metadata etcd://HOST:2379[,HOST:2379…][/PREFIX]</c> and the TLS files
/// for etcd's client certificate authentication (<c>--etcd-ca</c>, <c>--etcd-cert</c>, <c>--etcd-key</c>). With a CA or a
/// client certificate every endpoint is spoken to over TLS; without, over plain HTTP/2.
/// </summary>
public sealed record EtcdOptions
{
    /// <summary><c>host:port</c> of each etcd member.</summary>
    public required IReadOnlyList<string> Endpoints { get; init; }

    /// <summary>Key prefix of this store's keys (e.g. <c>/airlock/registry/</c>); several stores can share one etcd.</summary>
    public string? KeyPrefix { get; init; }

    /// <summary>CA, client certificate and key for etcd's <c>--client-cert-auth</c>.</summary>
    public TlsSettings Tls { get; init; } = new();

    /// <summary>How long one etcd call may take before the request fails with 503.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Time to live of each replica's etcd lease: upload-session holds, reference and sweep leases and the collector's
    /// election key are attached to it, so a replica that dies releases them after at most this long.
    /// </summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(10);

    public bool UsesTls => Tls.ImpliesTls;

    /// <summary>Parses <c>etcd://HOST:PORT[,HOST:PORT…][/PREFIX]</c>; null with <paramref name="error"/> when it is not one.</summary>
    public static EtcdOptions? Parse(string value, out string? error)
    {
        error = null;
        const string scheme = "etcd://";
        if (!value.StartsWith(scheme, StringComparison.Ordinal))
        {
            error = $"--metadata \"{value}\" is not etcd://HOST:2379[,HOST:2379…][/PREFIX]";
            return null;
        }

        var rest = value[scheme.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var hosts = slash < 0 ? rest : rest[..slash];
        var prefix = slash < 0 ? null : rest[slash..];
        var endpoints = new List<string>();
        foreach (var host in hosts.Split(',', StringSplitOptions.TrimEntries))
        {
            var colon = host.LastIndexOf(':');
            if (host.Length == 0 || colon <= 0 || !int.TryParse(host[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                error = $"--metadata \"{value}\": \"{host}\" is not HOST:PORT";
                return null;
            }

            endpoints.Add(host);
        }

        if (prefix is not null && (prefix.Length < 2 || prefix.Contains("//", StringComparison.Ordinal)))
        {
            error = $"--metadata \"{value}\": the key prefix \"{prefix}\" must be a path such as /airlock/site-a";
            return null;
        }

        return new EtcdOptions { Endpoints = endpoints, KeyPrefix = prefix is null ? null : prefix.TrimEnd('/') + "/" };
    }

    /// <summary>Every problem at once; the files named must exist (a security setting either takes effect or the command refuses).</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Endpoints.Count == 0)
        {
            problems.Add("--metadata names no etcd endpoint");
        }

        if ((Tls.CertFile is null) != (Tls.KeyFile is null))
        {
            problems.Add("--etcd-cert and --etcd-key must be given together");
        }

        foreach (var (flag, path) in new[] { ("--etcd-ca", Tls.CaFile), ("--etcd-cert", Tls.CertFile), ("--etcd-key", Tls.KeyFile) })
        {
            if (path is not null && !File.Exists(path))
            {
                problems.Add($"{flag} {path}: no such file");
            }
        }

        if (RequestTimeout <= TimeSpan.Zero || LeaseTtl < TimeSpan.FromSeconds(2))
        {
            problems.Add("the etcd request timeout must be positive and the lease time to live at least 2s");
        }

        return problems;
    }
}
