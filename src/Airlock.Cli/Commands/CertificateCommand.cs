using System.CommandLine;
using System.Globalization;
using Airlock.Cli.Hosting;
using Airlock.Cluster;
using Airlock.Cluster.Pki;

namespace Airlock.Cli.Commands;

/// <summary><c>airlock certificate check|rotate|rotate-ca</c>, as K3s's <c>k3s certificate</c> verbs.</summary>
internal static class CertificateCommand
{
    public static Command Create()
    {
        var command = new Command("certificate", "Check and rotate the cluster's certificates (K3s's certificate verbs).");
        command.Subcommands.Add(CreateCheck());
        command.Subcommands.Add(CreateRotate());
        command.Subcommands.Add(CreateRotateCa());
        command.WithExamples(
            "airlock certificate check",
            "systemctl stop airlock-server && airlock certificate rotate && systemctl start airlock-server",
            "airlock certificate rotate --service supervisor,registry",
            "airlock certificate rotate-ca --path /root/new-cas");
        return command;
    }

    private static Command CreateCheck()
    {
        var dataDir = CommonOptions.DataDir();
        var output = CommonOptions.Output("text");
        var renewWithin = RenewWithin();
        var command = new Command("check", "List every certificate of this machine's cluster state (server/tls, agent) with subject, issuer, names, "
            + "expiry and status: OK, WARNING (within --cert-renew-within of expiry), EXPIRED, NOT YET VALID. Exits 1 when one is expired.")
        {
            dataDir, output, renewWithin,
        };
        command.WithExamples("airlock certificate check", "airlock certificate check --output json");
        command.SetAction(parseResult =>
        {
            var certificates = CertificateInventory.Check(parseResult.GetValue(dataDir)!, renewWithin.GetDuration(parseResult), TimeProvider.System);
            var writer = parseResult.InvocationConfiguration.Output;
            if (certificates.Count == 0)
            {
                parseResult.InvocationConfiguration.Error.WriteLine($"airlock: no certificates under {parseResult.GetValue(dataDir)} (server/tls, agent): is it the right --data-dir?");
                return AirlockCli.ExitError;
            }

            var format = parseResult.GetValue(output)!;
            if (format is "text")
            {
                // K3s's text form: one sentence per certificate, here with the issuer and the names a table has no room for.
                foreach (var certificate in certificates)
                {
                    writer.WriteLine(Sentence(certificate));
                }
            }
            else
            {
                DataOutput.Write(writer, format, certificates, PkiJson.Default.IReadOnlyListCertificateStatus,
                    ("FILE", c => c.Position == 0 ? c.File : $"{c.File} [{c.Position}]"),
                    ("SUBJECT", c => c.Subject),
                    ("USAGES", c => string.Join(',', c.Usages)),
                    ("EXPIRES", c => c.NotAfter?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)),
                    ("DAYS LEFT", c => c.DaysLeft?.ToString(CultureInfo.InvariantCulture)),
                    ("STATUS", c => c.Status));
            }

            return certificates.Any(c => c.Status is CertificateInventory.Expired or CertificateInventory.Unreadable) ? AirlockCli.ExitError : AirlockCli.ExitOk;
        });
        return command;
    }

    private static string Sentence(CertificateStatus c)
    {
        var where = c.Position == 0 ? c.File : $"{c.File} [{c.Position}]";
        if (c.Status == CertificateInventory.Unreadable)
        {
            return $"{where}: not a readable PEM certificate [{c.Status}]";
        }

        var names = c.Sans.Count == 0 ? "" : $" for {string.Join(", ", c.Sans)}";
        var expires = c.NotAfter!.Value.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var state = c.Status switch
        {
            CertificateInventory.Expired => $"expired at {expires}",
            CertificateInventory.NotYetValid => $"is not valid before {c.NotBefore!.Value.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}",
            CertificateInventory.Warning => $"expires soon, at {expires} ({c.DaysLeft} days left)",
            _ => $"is ok, expires at {expires} ({c.DaysLeft} days left)",
        };
        return $"{where}: certificate {c.Subject} issued by {c.Issuer}{names} {state} [{c.Status}]";
    }

    private static Command CreateRotate()
    {
        var dataDir = CommonOptions.DataDir();
        var service = new Option<string[]>("--service", "-s")
        {
            Description = $"Reissue only these certificates (comma-separated or repeated): {string.Join(", ", ClusterServices.All.Select(s => s.Name()))}.",
            AllowMultipleArgumentsPerToken = false,
        };
        var tlsSan = TlsSan();
        var nodeName = NodeName();
        var command = new Command("rotate", "Back server/tls up to server/tls-<unix time> and reissue the server's certificates (all, or --service) "
            + "from the current CAs. The server must be stopped; nodes keep their certificates.")
        {
            dataDir, service, tlsSan, nodeName,
        };
        command.WithExamples("airlock certificate rotate", "airlock certificate rotate --service supervisor,registry");
        command.SetAction(parseResult =>
        {
            var services = ClusterServices.Parse(parseResult.GetValue(service) ?? [], out var unknown);
            if (unknown.Count > 0)
            {
                throw new UsageException($"--service {string.Join(", ", unknown)}: not a service; use {string.Join(", ", ClusterServices.All.Select(s => s.Name()))}");
            }

            var result = CertificateRotation.Rotate(PkiOptions(parseResult, dataDir, tlsSan, nodeName), services);
            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine($"backed up to {result.Backup}");
            foreach (var reissued in result.Reissued)
            {
                output.WriteLine($"reissued {reissued.Name()}");
            }

            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static Command CreateRotateCa()
    {
        var dataDir = CommonOptions.DataDir();
        var path = new Option<string?>("--path") { Description = "Folder with your own server-ca.crt/.key and client-ca.crt/.key (ECDSA) to use instead of new ones." };
        var tlsSan = TlsSan();
        var nodeName = NodeName();
        var command = new Command("rotate-ca", "Replace the cluster's CAs (new ones, or yours from --path), cross-signed by the old ones so nodes joined "
            + "under them keep working until they renew (at their next heartbeat); reissues the server's certificates and prints the new token "
            + "(its CA hash changes). The server must be stopped.")
        {
            dataDir, path, tlsSan, nodeName,
        };
        command.WithExamples("airlock certificate rotate-ca", "airlock certificate rotate-ca --path /root/new-cas");
        command.SetAction(parseResult =>
        {
            var result = CertificateRotation.RotateCa(PkiOptions(parseResult, dataDir, tlsSan, nodeName), parseResult.GetValue(path));
            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine($"backed up to {result.Backup}");
            output.WriteLine("new token (also in server/token; nodes joined before keep working):");
            output.WriteLine(result.Token!.ToString());
            return AirlockCli.ExitOk;
        });
        return command;
    }

    private static ServerPkiOptions PkiOptions(ParseResult parseResult, Option<string> dataDir, Option<string[]> tlsSan, Option<string?> nodeName)
    {
        var options = new ServerPkiOptions
        {
            Directory = new ServerDirectory(parseResult.GetValue(dataDir)!),
            TlsSans = parseResult.GetValue(tlsSan) ?? [],
        };
        return parseResult.GetValue(nodeName) is { } name ? options with { NodeName = name } : options;
    }

    // The same flag as the server's, so a reissued certificate keeps the names the server gives it (config.yaml serves both).
    private static Option<string[]> TlsSan() =>
        new("--tls-san") { Description = "Extra host name or IP for the reissued serving certificates, as given to the server (repeatable).", AllowMultipleArgumentsPerToken = false };

    private static Option<string?> NodeName() =>
        new("--node-name") { Description = "The server's node name, as given to the server (the peer certificate's name; default: the host name)." };

    private static DurationOption RenewWithin() =>
        new("--cert-renew-within", "Report WARNING for certificates within this of expiry.", ServerCommand.DefaultRenewWithin) { Positive = true };
}
