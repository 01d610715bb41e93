using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using Airlock.Cli.Commands;
using Airlock.Oci;
using Airlock.Registry.Auth;
using Airlock.Remote;
using Airlock.Tests.Registry;
using Airlock.Tests.Registry.Auth;

namespace Airlock.Tests.Cli;

public sealed class RegistryAccessOptionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("airlock-access-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_registries_file_changed_after_the_first_pull_is_read_again_for_the_next()
    {
        var htpasswd = Path.Combine(_dir, "htpasswd");
        await File.WriteAllLinesAsync(htpasswd, [HtpasswdFileTests.Entry("puller", "right-password")]);
        await using var registry = await TestRegistry.StartAsync(o => o with
        {
            AccessController = new BasicAccessController(new HtpasswdFile(htpasswd, TimeProvider.System), AccessPolicy.Create(anonymousPull: false)),
        });
        registry.Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("puller:right-password")));
        var image = await registry.PushImageAsync("team/app", "1");
        var host = registry.Server.Address.Authority;
        var registries = Path.Combine(_dir, "registries.yaml");
        await File.WriteAllTextAsync(registries, $"configs:\n  \"{host}\":\n    auth:\n      username: puller\n      password: wrong\n");
        var command = new Command("test");
        var access = RegistryAccessOptions.AddTo(command);
        var connector = access.Connect(command.Parse(["--registries", registries]));
        var reference = ImageReference.Parse($"{host}/team/app:1");

        var source = connector.OpenSource(reference);
        await using (source)
        {
            var refused = await Assert.ThrowsAsync<RegistryException>(async () => await source.ResolveAsync(reference.Identifier, CancellationToken.None));
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        // An operator fixes the password while the agent runs: the next pull uses it.
        await File.WriteAllTextAsync(registries, $"configs:\n  \"{host}\":\n    auth:\n      username: puller\n      password: right-password\n");
        source = connector.OpenSource(reference);
        await using (source)
        {
            var root = await source.ResolveAsync(reference.Identifier, CancellationToken.None);
            Assert.Equal(Digest.Sha256(image.Manifest), root.Digest);
        }
    }
}
