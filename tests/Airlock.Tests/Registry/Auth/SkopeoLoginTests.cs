using System.Diagnostics;
using Airlock.Registry.Auth;
using Airlock.Tls;

namespace Airlock.Tests.Registry.Auth;

/// <summary>
/// The real skopeo (containers/image, as podman and cri-o use it) logging in over the self-signed TLS,
/// through the Basic and the token flow: the challenge, the token endpoint and the CA all have to be
/// what a real client expects.
/// </summary>
public sealed class SkopeoLoginTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("airlock-skopeo-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData("basic")]
    [InlineData("token")]
    public async Task Skopeo_login_succeeds_with_the_right_password_over_TLS_trusting_only_the_CA(string mode)
    {
        var material = ServerCertificates.EnsureSelfSigned(Path.Combine(_directory, "tls"), "Airlock Registry", [], TimeProvider.System);
        var certDirectory = Directory.CreateDirectory(Path.Combine(_directory, "certs.d")).FullName;
        File.Copy(material.CaCertificatePath!, Path.Combine(certDirectory, "ca.crt"));
        var htpasswd = Path.Combine(_directory, "htpasswd");
        await File.WriteAllLinesAsync(htpasswd, [HtpasswdFileTests.Entry("alice", "wonderland")]);
        var users = new HtpasswdFile(htpasswd, TimeProvider.System);
        var policy = AccessPolicy.Create(anonymousPull: false);
        using var authority = TokenAuthority.LoadOrCreate(Path.Combine(_directory, "token", "key.pem"), new TokenAuthOptions(), TimeProvider.System);
        IAccessController controller = mode == "token" ? new TokenAccessController(authority, policy) : new BasicAccessController(users, policy);
        await using var server = await AuthTestServer.StartAsync(controller, app => app.MapRegistryTokenEndpoint(new TokenEndpoint(authority, users, policy)), material.ServerCertificate);
        var registry = $"127.0.0.1:{server.BaseAddress.Port}";

        var (ok, okOutput) = await SkopeoLoginAsync(registry, certDirectory, "wonderland");
        var (wrong, wrongOutput) = await SkopeoLoginAsync(registry, certDirectory, "guess");

        Assert.True(ok == 0, okOutput);
        Assert.Contains("Login Succeeded", okOutput, StringComparison.Ordinal);
        Assert.True(wrong != 0, wrongOutput);
        Assert.Contains("invalid username/password", wrongOutput, StringComparison.Ordinal);
    }

    private async Task<(int ExitCode, string Output)> SkopeoLoginAsync(string registry, string certDirectory, string password)
    {
        var start = new ProcessStartInfo("skopeo")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var argument in new[] { "login", "--authfile", Path.Combine(_directory, "auth.json"), "--cert-dir", certDirectory, "-u", "alice", "--password-stdin", registry })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        await process.StandardInput.WriteLineAsync(password);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw;
        }

        return (process.ExitCode, await output + await error);
    }
}
