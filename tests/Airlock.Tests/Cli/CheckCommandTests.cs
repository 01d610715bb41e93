using System.Collections;
using System.Text.Json;
using Airlock.Cli.Hosting;

namespace Airlock.Tests.Cli;

/// <summary><c>airlock check</c> on this very machine: every check runs and reports, as CI sees it.</summary>
public sealed class CheckCommandTests
{
    [Fact]
    public async Task Check_on_this_machine_reports_every_check_as_json()
    {
        var dataDir = Directory.CreateTempSubdirectory("airlock-check-").FullName;
        try
        {
            var output = new StringWriter();
            var code = await AirlockCli.RunAsync(["check", "--data-dir", dataDir, "--output", "json"], new Hashtable(), output, new StringWriter());
            using var json = JsonDocument.Parse(output.ToString());
            var names = json.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()).ToHashSet();
            foreach (var expected in new[] { "default-route", "containerd", "runc", "cgroups", "module-overlay", "module-br_netfilter", "sysctl net.ipv4.ip_forward", "data-dir", "clock", "flannel-backend", "service-cidr" })
            {
                Assert.Contains(expected, names);
            }

            var anyFailed = json.RootElement.EnumerateArray().Any(e => e.GetProperty("status").GetString() == "fail");
            Assert.Equal(anyFailed ? 1 : 0, code);
            var containerd = json.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == "containerd");
            Assert.Equal("pass", containerd.GetProperty("status").GetString());
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task A_removed_flannel_backend_in_config_makes_check_exit_1()
    {
        var config = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(config, "flannel-backend: wireguard\n");
            var output = new StringWriter();
            var code = await AirlockCli.RunAsync(["check", "--config", config], new Hashtable(), output, new StringWriter());
            Assert.Equal(1, code);
            Assert.Contains("FAIL  flannel-backend", output.ToString(), StringComparison.Ordinal);
            Assert.Contains("wireguard-native", output.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(config);
        }
    }
}
