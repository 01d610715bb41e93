using System.Diagnostics;

namespace Airlock.Node.Preflight;

/// <summary>
/// The view of the machine the checks read: files under <see cref="Root"/> (<c>/proc</c>, <c>/sys</c>,
/// <c>/lib/modules</c>), executables on <see cref="SearchPath"/>, the clock and the environment. Tests
/// point it at a fixture tree; production uses the real root.
/// </summary>
public sealed class PreflightHost
{
    public string Root { get; init; } = "/";

    public IReadOnlyList<string> SearchPath { get; init; } =
        (System.Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Concat(["/usr/sbin", "/sbin"])
        .Distinct(StringComparer.Ordinal)
        .ToArray();

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public string DataDir { get; init; } = "/var/lib/airlock";

    /// <summary>Kernel release (<c>uname -r</c>), for <c>/lib/modules/&lt;release&gt;/modules.builtin</c>.</summary>
    public string KernelRelease { get; init; } = ReadKernelRelease();

    public IReadOnlyDictionary<string, string> Environment { get; init; } = ReadEnvironment();

    /// <summary>This host's own addresses (up interfaces; not loopback, not link-local): what a proxy must leave alone.</summary>
    public IReadOnlyList<System.Net.IPAddress> Addresses { get; init; } = ReadAddresses();

    /// <summary>Free bytes below which the data-dir check fails (images are large).</summary>
    public long MinimumFreeBytes { get; init; } = 2L << 30;

    /// <summary>Free bytes below which the data-dir check warns.</summary>
    public long RecommendedFreeBytes { get; init; } = 20L << 30;

    public string HostPath(string absolute) => Path.Combine(Root, absolute.TrimStart('/'));

    public string? ReadFile(string absolute)
    {
        var path = HostPath(absolute);
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    public bool Exists(string absolute)
    {
        var path = HostPath(absolute);
        return File.Exists(path) || Directory.Exists(path);
    }

    public string? FindExecutable(string name) =>
        SearchPath.Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    /// <summary>First line of <c>&lt;tool&gt; --version</c>, or null when it cannot be run in time.</summary>
    public static string? VersionOf(string executable)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(executable, "--version")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return null;
            }

            var output = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(5000))
            {
                process.Kill(entireProcessTree: true);
                return null;
            }

            return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string ReadKernelRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    private static List<System.Net.IPAddress> ReadAddresses()
    {
        try
        {
            return System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                .Where(i => i.OperationalStatus != System.Net.NetworkInformation.OperationalStatus.Down)
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Select(a => a.Address)
                .Where(a => !System.Net.IPAddress.IsLoopback(a) && !a.IsIPv6LinkLocal
                    && !(a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && a.GetAddressBytes() is [169, 254, ..]))
                .Distinct()
                .ToList();
        }
        catch (System.Net.NetworkInformation.NetworkInformationException)
        {
            return [];
        }
    }

    private static Dictionary<string, string> ReadEnvironment()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            result[(string)entry.Key] = entry.Value as string ?? string.Empty;
        }

        return result;
    }
}
