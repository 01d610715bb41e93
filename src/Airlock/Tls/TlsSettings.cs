namespace Airlock.Tls;

/// <summary>
/// How to talk TLS to one server, as registries.yaml's <c>configs.&lt;host&gt;.tls</c> (and containerd's
/// hosts.toml <c>ca</c>/<c>client</c>/<c>skip_verify</c>) say it: the CA bundle its certificate must chain to
/// instead of the system store, a client certificate to present, and whether to skip verification.
/// </summary>
public sealed record TlsSettings
{
    /// <summary>PEM file of CA certificates the server's certificate must chain to (instead of the system store).</summary>
    public string? CaFile { get; init; }

    /// <summary>PEM client certificate (with <see cref="KeyFile"/>) presented when the server asks for one.</summary>
    public string? CertFile { get; init; }

    public string? KeyFile { get; init; }

    /// <summary>Accept any server certificate. Never needed with a <see cref="CaFile"/>.</summary>
    public bool InsecureSkipVerify { get; init; }

    /// <summary>
    /// True when the settings say the server speaks TLS: it has a CA or a client certificate to check it with.
    /// (<see cref="InsecureSkipVerify"/> alone says nothing: containerd sets it for every localhost registry.)
    /// </summary>
    public bool ImpliesTls => !string.IsNullOrEmpty(CaFile) || !string.IsNullOrEmpty(CertFile);

    /// <summary><paramref name="over"/>'s fields where it sets them, this one's elsewhere (skip-verify: either).</summary>
    public TlsSettings Merge(TlsSettings? over) => over is null ? this : new TlsSettings
    {
        CaFile = string.IsNullOrEmpty(over.CaFile) ? CaFile : over.CaFile,
        CertFile = string.IsNullOrEmpty(over.CertFile) ? CertFile : over.CertFile,
        KeyFile = string.IsNullOrEmpty(over.CertFile) ? KeyFile : over.KeyFile,
        InsecureSkipVerify = InsecureSkipVerify || over.InsecureSkipVerify,
    };
}
