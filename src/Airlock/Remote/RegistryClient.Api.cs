using System.Text.Json;
using Airlock.Distribution;

namespace Airlock.Remote;

public sealed partial class RegistryClient
{
    private const int MaxApiInfoBytes = 64 * 1024;

    /// <summary>
    /// Tells an Airlock registry what an <c>images load</c> pushed into it (<c>POST /api/v1/bundles</c>, its console's
    /// bundles page). Only an Airlock registry is told: one whose <c>GET /api/v1</c> says so; for any other this
    /// returns false and sends nothing more. Throws <see cref="RegistryException"/> when an Airlock registry refuses
    /// or fails the record.
    /// </summary>
    public async Task<bool> ReportLoadAsync(string registry, LoadReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        var probe = new RegistryCall { Registry = registry, Method = HttpMethod.Get, Target = ConsoleApi.Root, BufferBody = true, MaxBody = MaxApiInfoBytes };
        using (var answer = await SendAsync(probe, cancellationToken).ConfigureAwait(false))
        {
            if (!answer.IsSuccess || !IsAirlock(answer.Body))
            {
                return false;
            }
        }

        var body = JsonSerializer.SerializeToUtf8Bytes(report, DistributionJsonContext.Default.LoadReport);
        var post = new RegistryCall
        {
            Registry = registry,
            Method = HttpMethod.Post,
            Target = ConsoleApi.Bundles,
            Scopes = [.. report.Images.Select(i => i.Repository).Distinct(StringComparer.Ordinal).Select(PushScope)],
            Content = () => new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } },
            BufferBody = true,
        };
        using var response = await SendAsync(post, cancellationToken).ConfigureAwait(false);
        return response.IsSuccess ? true : throw Failure(post, response, "the registry did not record the load");
    }

    private static bool IsAirlock(byte[] body)
    {
        try
        {
            return JsonSerializer.Deserialize(body, DistributionJsonContext.Default.ApiInfo)?.Product == ConsoleApi.Product;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
