using System.Collections;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Airlock.Cli.Hosting;
using Airlock.Interop.Tests.Fixtures;
using Airlock.Oci;

namespace Airlock.Interop.Tests.WebConsole;

/// <summary>
/// An <c>airlock registry</c> process with two users (admin may do everything, alice only team-a/*) holding real
/// content: images pushed by skopeo (one multi-arch, one with Docker media types), a signature pushed as a referrer,
/// a bundle saved and loaded with <c>airlock images load</c>, a garbage collection by <c>airlock registry gc</c> and
/// an upload in flight; and a headless Chromium to look at it.
/// </summary>
public sealed class ConsoleSite : IAsyncLifetime
{
    public const string SignatureType = "application/vnd.dev.cosign.artifact.sig.v1+json";
    private readonly TempRoot _work = TempRoot.Create("airlock-console-");
    private RegistryProcess? _registry;
    private Chromium? _chromium;

    public RegistryProcess Registry => _registry ?? throw new InvalidOperationException("not started");

    public Chromium Chromium => _chromium ?? throw new InvalidOperationException("not started");

    public TestImage App { get; private set; } = null!;

    public TestImage Multi { get; private set; } = null!;

    public Digest SignatureDigest { get; private set; }

    public static string Password(string user) => $"{user}-secret";

    public async Task InitializeAsync()
    {
        var htpasswd = Path.Combine(_work.Path, "htpasswd");
        await File.WriteAllLinesAsync(htpasswd, [.. new[] { "admin", "alice" }.Select(u => $"{u}:{BCrypt.Net.BCrypt.HashPassword(Password(u), 5)}")]);
        var access = Path.Combine(_work.Path, "access.yaml");
        await File.WriteAllTextAsync(access, """
            access:
              - users: [alice]
                repositories: ["team-a/*"]
                actions: [pull, push]
              - users: [admin]
                repositories: ["*"]
                actions: ["*"]
            """);
        var chromium = Chromium.LaunchAsync();
        _registry = await RegistryProcess.StartAsync(RegistryKind.Airlock, new RegistryOptions { AirlockArguments = ["--htpasswd", htpasswd, "--access", access] });
        _chromium = await chromium;

        App = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "app"));
        Multi = await TestImages.WriteMultiArchAsync(Path.Combine(_work.Path, "multi"));
        var docker = await TestImages.WriteRunnableAsync(Path.Combine(_work.Path, "docker"), ImageFlavor.Docker);
        string[] creds = ["--dest-creds", $"admin:{Password("admin")}"];
        (await Skopeo.PushAsync(App, Registry, "team-a/app:1", creds)).EnsureSuccess();
        (await Skopeo.PushAsync(App, Registry, "library/busybox:1.36", creds)).EnsureSuccess();
        (await Skopeo.PushAsync(docker, Registry, "team-a/tools:2", creds)).EnsureSuccess();
        (await Skopeo.PushAsync(Multi, Registry, "team-b/multi:1", [.. creds, "--all"])).EnsureSuccess();

        using var http = Registry.CreateHttpClient();
        http.DefaultRequestHeaders.Authorization = Basic("admin");
        SignatureDigest = await PushSignatureAsync(http, "team-a/app", App);

        // A bundle across the "gap": saved from this registry, loaded back under loaded/ (which records the load).
        var bundle = Path.Combine(_work.Path, "bundle.tar.zst");
        await AirlockAsync("images", "save", "--quiet", "--creds", $"admin:{Password("admin")}", "-o", bundle, $"{Registry.Host}/team-a/app:1", $"{Registry.Host}/library/busybox:1.36");
        await AirlockAsync("images", "load", "--quiet", "--creds", $"admin:{Password("admin")}", bundle, "--to", $"{Registry.Host}/loaded");

        // A collection beside the running registry, and an upload left open.
        await AirlockAsync("registry", "gc", "--data-dir", Registry.DataDirectory);
        using var started = await http.PostAsync("v2/team-a/app/blobs/uploads/", null);
        started.EnsureSuccessStatusCode();
        using var chunk = new ByteArrayContent(new byte[40_000]);
        chunk.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        (await http.PatchAsync(started.Headers.Location, chunk)).EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        if (_chromium is not null)
        {
            await _chromium.DisposeAsync();
        }

        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        _work.UnmountAndDelete();
    }

    public static AuthenticationHeaderValue Basic(string user) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{Password(user)}")));

    /// <summary>A page seen by <paramref name="user"/> (null: no credentials) at a desktop's size unless told otherwise.</summary>
    public Task<WatchedPage> OpenAsync(string? user, int width = 1280, int height = 800, Microsoft.Playwright.ColorScheme scheme = Microsoft.Playwright.ColorScheme.Light) =>
        WatchedPage.OpenAsync(Chromium, new Microsoft.Playwright.BrowserNewContextOptions
        {
            BaseURL = Registry.BaseAddress.ToString(),
            HttpCredentials = user is null ? null : new Microsoft.Playwright.HttpCredentials { Username = user, Password = Password(user) },
            ViewportSize = new Microsoft.Playwright.ViewportSize { Width = width, Height = height },
            ColorScheme = scheme,
        });

    private static async Task AirlockAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await AirlockCli.RunAsync(args, new Hashtable(), output, error);
        if (code != 0 || error.ToString().Contains("warning", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"airlock {string.Join(' ', args)} exited {code}: {output}{error}");
        }
    }

    /// <summary>A cosign-style signature: an artifact manifest whose subject is the image, pushed by digest.</summary>
    private static async Task<Digest> PushSignatureAsync(HttpClient http, string repository, TestImage subject)
    {
        var payload = Encoding.UTF8.GetBytes("{\"critical\":{\"image\":{\"docker-manifest-digest\":\"" + subject.Digest + "\"}}}");
        byte[] empty = "{}"u8.ToArray();
        foreach (var blob in new[] { payload, empty })
        {
            using var content = new ByteArrayContent(blob);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            (await http.PostAsync($"v2/{repository}/blobs/uploads/?digest={Digest.Sha256(blob)}", content)).EnsureSuccessStatusCode();
        }

        var manifest = JsonSerializer.SerializeToUtf8Bytes(new
        {
            schemaVersion = 2,
            mediaType = MediaTypes.OciManifest,
            artifactType = SignatureType,
            config = new { mediaType = MediaTypes.OciEmpty, digest = Digest.Sha256(empty).ToString(), size = empty.Length },
            layers = new[] { new { mediaType = "application/vnd.dev.cosign.simplesigning.v1+json", digest = Digest.Sha256(payload).ToString(), size = payload.Length } },
            subject = new { mediaType = subject.MediaType, digest = subject.Digest.ToString(), size = subject.ManifestBytes.Length },
        });
        var digest = Digest.Sha256(manifest);
        using var body = new ByteArrayContent(manifest);
        body.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.OciManifest);
        (await http.PutAsync($"v2/{repository}/manifests/{digest}", body)).EnsureSuccessStatusCode();
        return digest;
    }
}
