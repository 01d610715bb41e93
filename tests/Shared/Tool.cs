using System.Diagnostics;

namespace Airlock.Testing;

/// <summary>What a finished command-line tool run produced.</summary>
public sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Stdout followed by stderr.</summary>
    public string Output => Stdout + Stderr;

    /// <summary>Everything a failure message needs to explain itself.</summary>
    public override string ToString() => $"`{Command}` exited {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";

    /// <summary>Exit code and stdout followed by stderr, for <c>var (exit, output) = await …</c>.</summary>
    public void Deconstruct(out int exitCode, out string output)
    {
        exitCode = ExitCode;
        output = Output;
    }

    /// <summary>Returns this result, or throws with the full output when the tool failed.</summary>
    public ToolResult EnsureSuccess() =>
        Succeeded ? this : throw new InvalidOperationException(ToString());
}

/// <summary>
/// Runs the real client binaries (skopeo, podman, ctr, curl) with a bounded time, so a hanging tool fails
/// its test with its output instead of stalling the whole suite.
/// </summary>
public static class Tool
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(90);

    /// <summary>
    /// Settings that keep the containers/image tools (skopeo, podman) away from the machine's own
    /// configuration: no ambient credentials, no registry mirrors or short-name aliases.
    /// </summary>
    public static IReadOnlyDictionary<string, string> HermeticContainersEnvironment { get; } = CreateHermeticEnvironment();

    /// <summary>How every test starts a program: no shell, all three standard streams redirected.</summary>
    public static ProcessStartInfo StartInfo(string fileName, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }

    public static Task<ToolResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null, CancellationToken cancellationToken = default) =>
        RunAsync(fileName, arguments.ToList(), timeout ?? DefaultTimeout, environment, cancellationToken);

    private static async Task<ToolResult> RunAsync(string fileName, List<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var start = Tool.StartInfo(fileName, arguments);

        foreach (var (name, value) in HermeticContainersEnvironment)
        {
            start.Environment[name] = value;
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var command = string.Join(' ', [fileName, .. arguments]);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw new TimeoutException(
                $"`{command}` did not finish within {timeout.TotalSeconds:0}s\nstdout:\n{await stdout}\nstderr:\n{await stderr}");
        }

        return new ToolResult(command, process.ExitCode, await stdout, await stderr);
    }

    private static Dictionary<string, string> CreateHermeticEnvironment()
    {
        var directory = Directory.CreateTempSubdirectory("airlock-tools-").FullName;
        var registriesConf = Path.Combine(directory, "registries.conf");
        File.WriteAllText(registriesConf, "unqualified-search-registries = []\n");
        var authFile = Path.Combine(directory, "auth.json");
        File.WriteAllText(authFile, """{"auths":{}}""");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(directory, recursive: true);
        return new Dictionary<string, string>
        {
            // No credentials at all: tests that need them pass them explicitly (podman insists the file exists).
            ["REGISTRY_AUTH_FILE"] = authFile,
            ["CONTAINERS_REGISTRIES_CONF"] = registriesConf,
            ["XDG_RUNTIME_DIR"] = directory,
            ["DOCKER_CONFIG"] = directory,
        };
    }
}
