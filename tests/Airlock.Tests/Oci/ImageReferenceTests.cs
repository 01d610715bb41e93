using Airlock.Oci;

namespace Airlock.Tests.Oci;

public sealed class ImageReferenceTests
{
    [Theory]
    [InlineData("busybox", "docker.io", "library/busybox", null)]
    [InlineData("rancher/mirrored-pause:3.6", "docker.io", "rancher/mirrored-pause", "3.6")]
    [InlineData("docker.io/rancher/mirrored-pause:3.6", "docker.io", "rancher/mirrored-pause", "3.6")]
    [InlineData("index.docker.io/library/alpine:3", "docker.io", "library/alpine", "3")]
    [InlineData("localhost/app", "localhost", "app", null)]
    [InlineData("localhost:5000/a/b/c:v1", "localhost:5000", "a/b/c", "v1")]
    [InlineData("registry.example.com/team/app:1.0", "registry.example.com", "team/app", "1.0")]
    [InlineData("127.0.0.1:5000/app", "127.0.0.1:5000", "app", null)]
    [InlineData("[::1]:5000/app:x", "[::1]:5000", "app", "x")]
    public void Names_are_normalised_as_docker_and_k3s_do(string input, string registry, string repository, string? tag)
    {
        var reference = ImageReference.Parse(input);
        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
    }

    [Fact]
    public void A_digest_reference_keeps_tag_and_digest()
    {
        var reference = ImageReference.Parse("quay.io/a/b:t@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        Assert.Equal("t", reference.Tag);
        Assert.Equal("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", reference.Identifier);
    }

    [Theory]
    [InlineData("Busybox")]
    [InlineData("registry.example.com/Team/app")]
    [InlineData("a/../b")]
    [InlineData("app:bad tag")]
    [InlineData("app@sha256:nothex")]
    [InlineData("")]
    public void Invalid_references_are_refused(string input)
    {
        Assert.False(ImageReference.TryParse(input, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Theory]
    [InlineData("a", true)]
    [InlineData("a/b-c/d__e.f", true)]
    [InlineData("a/../b", false)]
    [InlineData("a/%2e%2e/b", false)]
    [InlineData("a//b", false)]
    [InlineData("-a", false)]
    public void Repository_names_follow_the_distribution_grammar(string name, bool valid)
    {
        Assert.Equal(valid, ImageReference.IsValidRepository(name));
    }

    [Fact]
    public void Names_tags_and_registries_with_a_trailing_newline_are_invalid()
    {
        Assert.True(ImageReference.IsValidRepository("demo/app"));
        Assert.False(ImageReference.IsValidRepository("demo/app\n"));
        Assert.True(ImageReference.IsValidTag("latest"));
        Assert.False(ImageReference.IsValidTag("latest\n"));
        Assert.False(ImageReference.TryParse("registry.example\n/team/app:1", out _));
        Assert.False(ImageReference.TryParse("registry.example/team/app\n@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", out _));
    }
}
