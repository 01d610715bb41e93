using Airlock.Oci;

namespace Airlock.Tests.Oci;

public sealed class DigestTests
{
    [Fact]
    public void Sha256_of_empty_content_is_the_well_known_digest()
    {
        Assert.Equal("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Digest.Sha256([]).ToString());
    }

    [Theory]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")]
    [InlineData("sha256:abc")]
    [InlineData("sha256")]
    [InlineData(":abc")]
    [InlineData("SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("")]
    public void Malformed_digests_are_refused_with_a_reason(string value)
    {
        Assert.False(Digest.TryParse(value, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Fact]
    public void An_unregistered_algorithm_parses_but_is_not_supported()
    {
        Assert.True(Digest.TryParse("blake3:abcdef", out var digest));
        Assert.False(digest.IsSupported);
        Assert.Equal("blake3", digest.Algorithm);
    }
}
