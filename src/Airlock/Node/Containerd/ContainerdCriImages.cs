using Grpc.Core;
using CriApi = Airlock.Node.Containerd.Cri;

namespace Airlock.Node.Containerd;

/// <summary>The CRI image service containerd's CRI plugin serves on the same socket (the kubelet's way to pull).</summary>
public sealed class ContainerdCriImages
{
    private readonly ContainerdClient _client;
    private readonly CriApi.ImageService.ImageServiceClient _service;

    internal ContainerdCriImages(ContainerdClient client, CallInvoker invoker)
    {
        _client = client;
        _service = new CriApi.ImageService.ImageServiceClient(invoker);
    }

    /// <summary>
    /// Pulls <paramref name="image"/> through the CRI image service containerd serves on the same socket, as the
    /// kubelet and K3s's <c>.txt</c> pre-pull do: containerd resolves it with its own <c>hosts.toml</c> tree and
    /// registry auth (read at every pull, so a re-rendered registries.yaml applies at once) into <c>k8s.io</c>.
    /// Returns the image id. A containerd without the CRI plugin fails with <see cref="StatusCode.Unimplemented"/>.
    /// </summary>
    public async Task<string> PullImageAsync(string image, CancellationToken cancellationToken)
    {
        var request = new CriApi.PullImageRequest { Image = new CriApi.ImageSpec { Image = image } };
        var response = await _client.Unary("cri.pull " + image, c => _service.PullImageAsync(request, c), cancellationToken, _client.Options.TransferTimeout).ConfigureAwait(false);
        return response.ImageRef;
    }
}
