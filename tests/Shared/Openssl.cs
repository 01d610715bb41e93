using System.Globalization;

namespace Airlock.Testing;

/// <summary>The real <c>openssl</c>, as a second opinion on the certificates Airlock issues.</summary>
public static class Openssl
{
    /// <summary>
    /// <c>openssl verify</c> of the first certificate in <paramref name="certificateFile"/> against the CAs in
    /// <paramref name="caFile"/>, with the file's further certificates as intermediates (e.g. a cross-signed CA), for
    /// <paramref name="purpose"/> (<c>sslserver</c>, <c>sslclient</c>), at <paramref name="at"/> (tests move time).
    /// Throws with openssl's output unless it says OK.
    /// </summary>
    public static async Task VerifyAsync(string caFile, string certificateFile, string purpose, DateTimeOffset? at = null)
    {
        List<string> arguments = ["verify", "-CAfile", caFile, "-untrusted", certificateFile, "-purpose", purpose];
        if (at is { } time)
        {
            arguments.AddRange(["-attime", time.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)]);
        }

        var result = await Tool.RunAsync("openssl", [.. arguments, certificateFile]);
        if (!result.Succeeded || !result.Stdout.Contains(": OK", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"openssl does not accept {certificateFile} under {caFile}:\n{result}");
        }
    }
}
