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

    // .NET's "$" also matches before a final "\n"; every grammar must end at the end of the text.
    [Theory]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n")]
    [InlineData("sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e\n")]
    [InlineData("blake3:abcdef\n")]
    [InlineData("sha256\n:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    public void A_digest_with_a_trailing_newline_in_either_part_is_malformed(string value)
    {
        Assert.False(Digest.TryParse(value, out _, out var error));
        Assert.Contains("malformed", error, StringComparison.Ordinal);
    }
}
