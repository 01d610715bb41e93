using Airlock.Oci;

namespace Airlock.Content;

/// <summary>
/// A stream that, read to its end, gives exactly one blob or fails (<see cref="VerifyingStream"/>, or content
/// verified earlier), so a reader that would check the same blob again — an archive being written — can rely on
/// it and hash the content once.
/// </summary>
public interface IVerifiedContent
{
    /// <summary>Whether this stream is checked against exactly <paramref name="digest"/> and <paramref name="size"/>.</summary>
    bool Verifies(Digest digest, long size);
}
