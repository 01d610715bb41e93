using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Airlock.Oci;
using Airlock.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Airlock.Tests.Registry;

/// <summary>A real registry on 127.0.0.1:0 over a temp data directory, and an HTTP client for it.</summary>
internal sealed class TestRegistry : IAsyncDisposable
{
    private readonly bool _ownsDirectory;

    private TestRegistry(RegistryServer server, string dataDirectory, bool ownsDirectory, TestStorage storage)
    {
        Server = server;
        Storage = storage;
        DataDirectory = dataDirectory;
        _ownsDirectory = ownsDirectory;
        Client = new HttpClient { BaseAddress = server.Address };
    }

    public RegistryServer Server { get; }

    /// <summary>The store the registry runs on (the filesystem store unless the test class chose S3 + etcd).</summary>
    public TestStorage Storage { get; }

    public string DataDirectory { get; }

    public HttpClient Client { get; }

    public string BlobsDirectory => Path.Combine(DataDirectory, "registry", "blobs");

    public static async Task<TestRegistry> StartAsync(Func<RegistryServerOptions, RegistryServerOptions>? configure = null, string? dataDirectory = null, TestStorage? storage = null)
    {
        storage ??= TestStorage.FileSystem;
        var owns = dataDirectory is null;
        dataDirectory ??= Directory.CreateTempSubdirectory("airlock-registry-test-").FullName;
        var options = new RegistryServerOptions
        {
            DataDirectory = dataDirectory,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            ShutdownTimeout = TimeSpan.FromSeconds(5),
        };
        options = storage.Configure(configure?.Invoke(options) ?? options);
        var server = await RegistryServer.StartAsync(options, NullLoggerFactory.Instance, CancellationToken.None);
        return new TestRegistry(server, dataDirectory, owns, storage);
    }

    /// <summary>
    /// A registry composed as <c>airlock registry</c> composes it (<see cref="RegistrySettings"/>: TLS and auth files,
    /// the token endpoint, private pull-through caches kept from anonymous clients).
    /// </summary>
    public static async Task<TestRegistry> StartComposedAsync(Func<RegistrySettings, RegistrySettings> configure, string? dataDirectory = null, TestStorage? storage = null)
    {
        storage ??= TestStorage.FileSystem;
        var owns = dataDirectory is null;
        dataDirectory ??= Directory.CreateTempSubdirectory("airlock-registry-test-").FullName;
        var settings = configure(new RegistrySettings
        {
            Server = new RegistryServerOptions
            {
                DataDirectory = dataDirectory,
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                ShutdownTimeout = TimeSpan.FromSeconds(5),
            },
        });
        try
        {
            settings = settings with { Server = storage.Configure(settings.Server) };
            var server = await RegistryServer.StartAsync(settings, NullLoggerFactory.Instance, CancellationToken.None);
            return new TestRegistry(server, dataDirectory, owns, storage);
        }
        catch when (owns)
        {
            Directory.Delete(dataDirectory, recursive: true);
            throw;
        }
    }

    /// <summary>Stops the server but keeps its data (for restart tests).</summary>
    public async Task StopKeepingDataAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        if (_ownsDirectory)
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
    }

    public static Digest DigestOf(byte[] content) => Digest.Sha256(content);

    public async Task<HttpResponseMessage> PushBlobAsync(string repository, byte[] content, Digest? claimed = null)
    {
        var digest = claimed ?? DigestOf(content);
        using var body = new ByteArrayContent(content);
        return await Client.PostAsync($"/v2/{repository}/blobs/uploads/?digest={digest}", body);
    }

    public async Task<Digest> PushBlobOkAsync(string repository, byte[] content)
    {
        using var response = await PushBlobAsync(repository, content);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return DigestOf(content);
    }

    public async Task<HttpResponseMessage> PutManifestAsync(string repository, string reference, byte[] manifest, string mediaType = MediaTypes.OciManifest)
    {
        using var body = new ByteArrayContent(manifest);
        body.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return await Client.PutAsync($"/v2/{repository}/manifests/{reference}", body);
    }

    /// <summary>Pushes a config and one layer, then a manifest tagged <paramref name="tag"/>; returns the pieces.</summary>
    public async Task<TestImage> PushImageAsync(string repository, string tag, byte[]? layer = null, string mediaType = MediaTypes.OciManifest)
    {
        var image = TestImage.Create(layer ?? Encoding.UTF8.GetBytes("layer of " + repository + ":" + tag), mediaType);
        await PushBlobOkAsync(repository, image.Config);
        await PushBlobOkAsync(repository, image.Layer);
        using var response = await PutManifestAsync(repository, tag, image.Manifest, mediaType);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return image;
    }

    public static async Task<(string Code, string? Detail)> ErrorOf(HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("errors")[0];
        return (error.GetProperty("code").GetString()!, error.TryGetProperty("detail", out var detail) ? detail.GetString() : null);
    }

    public static async Task AssertError(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal(code, (await ErrorOf(response)).Code);
    }

    /// <summary>Sends a request line as written (HttpClient would normalise dot segments) and returns status and body.</summary>
    public Task<(int Status, string Body)> SendRawAsync(string method, string target) => SendRawAsync(Server.Address, method, target);

    /// <summary>Sends a request line as written to the server at <paramref name="address"/>.</summary>
    public static async Task<(int Status, string Body)> SendRawAsync(Uri address, string method, string target)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        var stream = tcp.GetStream();
        var request = $"{method} {target} HTTP/1.1\r\nHost: {address.Authority}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var text = await reader.ReadToEndAsync();
        var status = int.Parse(text.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var bodyStart = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return (status, bodyStart >= 0 ? text[(bodyStart + 4)..] : string.Empty);
    }

    /// <summary>Blobs stored, counted where the store keeps them (see <see cref="TestStorage.CountStoredBlobsAsync"/>).</summary>
    public Task<int> CountStoredBlobsAsync() => Storage.CountStoredBlobsAsync(this);

    /// <summary>What upload sessions left behind (see <see cref="TestStorage.CountUploadLeftoversAsync"/>).</summary>
    public Task<int> CountUploadLeftoversAsync() => Storage.CountUploadLeftoversAsync(this);
}

/// <summary>A minimal image: config, one layer and the manifest naming them.</summary>
internal sealed record TestImage(byte[] Config, byte[] Layer, byte[] Manifest, string MediaType)
{
    public Digest ConfigDigest => Digest.Sha256(Config);

    public Digest LayerDigest => Digest.Sha256(Layer);

    public Digest ManifestDigest => Digest.Sha256(Manifest);

    public static TestImage Create(byte[] layer, string mediaType = MediaTypes.OciManifest, string? artifactType = null, Descriptor? subject = null, string? configMediaType = null)
    {
        var config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
        var docker = mediaType == MediaTypes.DockerManifest;
        var manifest = BuildManifest(
            mediaType,
            configMediaType ?? (docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig),
            config,
            docker ? MediaTypes.DockerLayerGzip : MediaTypes.OciLayer,
            layer,
            artifactType,
            subject);
        return new TestImage(config, layer, manifest, mediaType);
    }

    public static byte[] BuildManifest(string mediaType, string configMediaType, byte[] config, string layerMediaType, byte[] layer, string? artifactType = null, Descriptor? subject = null)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("schemaVersion", 2);
            json.WriteString("mediaType", mediaType);
            if (artifactType is not null)
            {
                json.WriteString("artifactType", artifactType);
            }

            WriteDescriptor(json, "config", configMediaType, config);
            json.WriteStartArray("layers");
            WriteDescriptor(json, null, layerMediaType, layer);
            json.WriteEndArray();
            if (subject is not null)
            {
                json.WriteStartObject("subject");
                json.WriteString("mediaType", subject.MediaType);
                json.WriteString("digest", subject.Digest.ToString());
                json.WriteNumber("size", subject.Size);
                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    public static byte[] BuildIndex(string mediaType, params (string MediaType, byte[] Manifest)[] children)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("schemaVersion", 2);
            json.WriteString("mediaType", mediaType);
            json.WriteStartArray("manifests");
            foreach (var (childType, manifest) in children)
            {
                json.WriteStartObject();
                json.WriteString("mediaType", childType);
                json.WriteString("digest", Digest.Sha256(manifest).ToString());
                json.WriteNumber("size", manifest.Length);
                json.WriteStartObject("platform");
                json.WriteString("architecture", "amd64");
                json.WriteString("os", "linux");
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static void WriteDescriptor(Utf8JsonWriter json, string? property, string mediaType, byte[] content)
    {
        if (property is null)
        {
            json.WriteStartObject();
        }
        else
        {
            json.WriteStartObject(property);
        }

        json.WriteString("mediaType", mediaType);
        json.WriteString("digest", Digest.Sha256(content).ToString());
        json.WriteNumber("size", content.Length);
        json.WriteEndObject();
    }
}
