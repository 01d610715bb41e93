using Airlock.Node;

namespace Airlock.Tests.Node;

public sealed class ContainerdVersionTests
{
    [Theory]
    [InlineData("2", ContainerdConfigSchema.V3)]
    [InlineData("2.1", ContainerdConfigSchema.V3)]
    [InlineData("1.6", ContainerdConfigSchema.V2)]
    [InlineData("1.7", ContainerdConfigSchema.V2)]
    [InlineData("v1.7.27", ContainerdConfigSchema.V2)]
    // What `containerd --version` prints: Debian 12, Debian 13, Debian unstable, containerd.io.
    [InlineData("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n", ContainerdConfigSchema.V2)]
    [InlineData("containerd github.com/containerd/containerd 1.7.24~ds1 1.7.24~ds1-6+deb13u1\n", ContainerdConfigSchema.V2)]
    [InlineData("containerd github.com/containerd/containerd/v2 2.1.9+unknown \n", ContainerdConfigSchema.V3)]
    [InlineData("containerd containerd.io v2.0.5 fb4c30d4ede3531652d86197bf3fc9515e5276d9\n", ContainerdConfigSchema.V3)]
    public void The_config_schema_follows_the_major_version(string version, ContainerdConfigSchema expected) =>
        Assert.Equal(expected, ContainerdHostProbe.SchemaForVersion(version));

    [Theory]
    [InlineData("")]
    [InlineData("soon")]
    [InlineData("containerd github.com/containerd/containerd/v2")]
    public void Text_without_a_version_is_refused_naming_it(string version)
    {
        var error = Assert.Throws<FormatException>(() => ContainerdHostProbe.SchemaForVersion(version));
        Assert.Contains("give 1.6, 1.7 or 2", error.Message, StringComparison.Ordinal);
    }
}
