using Airlock.Node.Containerd;
using Airlock.Node.Containerd.Cri;
using Grpc.Core;
using Grpc.Net.Client;

namespace Airlock.Interop.Tests.Fixtures;

/// <summary>
/// The kubelet's side of image pulls: the CRI ImageService (proto/cri-api) on containerd's socket. Unlike
/// <c>ctr images pull</c>, a CRI pull takes the registry settings from containerd's own config.toml
/// (<c>config_path</c> for hosts.toml and <c>registry.configs</c> for credentials), so this is how a test checks
/// what a node really does with the rendered files. Images land in containerd's <c>k8s.io</c> namespace.
/// </summary>
internal sealed class CriImages : IDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(60);
    private readonly GrpcChannel _channel;
    private readonly ImageService.ImageServiceClient _client;

    private CriImages(GrpcChannel channel)
    {
        _channel = channel;
        _client = new ImageService.ImageServiceClient(channel);
    }

    public static CriImages Connect(string socketPath) => new(ContainerdClient.OpenChannel(socketPath));

    /// <summary>PullImage with no credentials of the caller's own (the kubelet's case without imagePullSecrets); returns the image id.</summary>
    public async Task<string> PullAsync(string image, CancellationToken cancellationToken = default)
    {
        var response = await _client.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = image } },
            deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
        return response.ImageRef;
    }

    /// <summary>The image as the CRI knows it, or null when it is not there.</summary>
    public async Task<Image?> StatusAsync(string image, CancellationToken cancellationToken = default)
    {
        var response = await _client.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image } },
            deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
        return response.Image;
    }

    public async Task<IReadOnlyList<Image>> ListAsync(CancellationToken cancellationToken = default)
    {
        var response = await _client.ListImagesAsync(new ListImagesRequest(), deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);
        return response.Images;
    }

    public async Task RemoveAsync(string image, CancellationToken cancellationToken = default) =>
        await _client.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = image } },
            deadline: DateTime.UtcNow + CallTimeout, cancellationToken: cancellationToken);

    /// <summary>Pulls and expects a failure; returns the RPC error for the test to inspect.</summary>
    public async Task<RpcException> PullFailureAsync(string image, CancellationToken cancellationToken = default)
    {
        try
        {
            var id = await PullAsync(image, cancellationToken);
            throw new InvalidOperationException($"pull of {image} succeeded ({id}) but was expected to fail");
        }
        catch (RpcException ex)
        {
            return ex;
        }
    }

    public void Dispose() => _channel.Dispose();
}
