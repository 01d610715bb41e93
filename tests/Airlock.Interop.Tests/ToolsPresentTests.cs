namespace Airlock.Interop.Tests;

/// <summary>The real components the interop tests drive must be installed by test.sh.</summary>
public sealed class ToolsPresentTests
{
    [Theory]
    [InlineData("containerd")]
    [InlineData("ctr")]
    [InlineData("runc")]
    [InlineData("skopeo")]
    [InlineData("podman")]
    [InlineData("docker-registry")]
    [InlineData("busybox")]
    public void Tool_is_on_PATH(string tool)
    {
        var found = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':')
            .Concat(["/usr/sbin", "/sbin"])
            .Any(dir => File.Exists(Path.Combine(dir, tool)));
        Assert.True(found, $"{tool} is not installed; test.sh installs it when run as root");
    }
}
