using Airlock.Oci;
using Grpc.Core;
using ImagesApi = Airlock.Node.Containerd.Api.Images;

namespace Airlock.Node.Containerd;

/// <summary>containerd's image service (Go: <c>client.ImageService()</c>): the named image records that point at content.</summary>
public sealed class ContainerdImageStore
{
    private readonly ContainerdClient _client;
    private readonly ImagesApi.Images.ImagesClient _service;

    internal ContainerdImageStore(ContainerdClient client, CallInvoker invoker)
    {
        _client = client;
        _service = new ImagesApi.Images.ImagesClient(invoker);
    }

    public async Task<ContainerdImage?> GetAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _client.Unary("images.get " + name, c => _service.GetAsync(new ImagesApi.GetImageRequest { Name = name }, c), cancellationToken).ConfigureAwait(false);
            return ToImage(response.Image);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Image records, optionally filtered with containerd filter syntax (e.g. <c>name==docker.io/library/x:1</c>).</summary>
    public async Task<IReadOnlyList<ContainerdImage>> ListAsync(IEnumerable<string>? filters, CancellationToken cancellationToken)
    {
        var request = new ImagesApi.ListImagesRequest();
        if (filters is not null)
        {
            request.Filters.Add(filters);
        }

        var response = await _client.Unary("images.list", c => _service.ListAsync(request, c), cancellationToken).ConfigureAwait(false);
        return response.Images.Select(ToImage).ToList();
    }

    /// <summary>
    /// Creates the image record, or points an existing one at <paramref name="target"/> and sets
    /// <paramref name="labels"/> on it (labels others put there stay).
    /// </summary>
    public async Task<ContainerdImage> PutAsync(string name, Descriptor target, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        var image = new ImagesApi.Image { Name = name, Target = ContainerdWire.ToWire(target) };
        ContainerdWire.AddAll(image.Labels, labels);
        try
        {
            var created = await _client.Unary("images.create " + name, c => _service.CreateAsync(new ImagesApi.CreateImageRequest { Image = image }, c), cancellationToken).ConfigureAwait(false);
            return ToImage(created.Image);
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.AlreadyExists)
        {
            var update = new ImagesApi.UpdateImageRequest { Image = image, UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask() };
            update.UpdateMask.Paths.Add("target");
            update.UpdateMask.Paths.Add(labels.Keys.Select(k => "labels." + k));
            var updated = await _client.Unary("images.update " + name, c => _service.UpdateAsync(update, c), cancellationToken).ConfigureAwait(false);
            return ToImage(updated.Image);
        }
    }

    /// <summary>Deletes an image record; false when there was none. Content goes with the next garbage collection.</summary>
    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await _client.Unary("images.delete " + name, c => _service.DeleteAsync(new ImagesApi.DeleteImageRequest { Name = name }, c), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (ContainerdException ex) when (ex.Code == StatusCode.NotFound)
        {
            return false;
        }
    }

    private static ContainerdImage ToImage(ImagesApi.Image image) =>
        new(image.Name, ContainerdWire.FromWire(image.Target), new Dictionary<string, string>(image.Labels, StringComparer.Ordinal));
}
