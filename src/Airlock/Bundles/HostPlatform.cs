using System.Runtime.InteropServices;
using Airlock.Oci;

namespace Airlock.Bundles;

/// <summary>The platform of this machine in OCI terms (GOARCH names), the default image of a multi-arch index.</summary>
internal static class HostPlatform
{
    public static Platform Current { get; } = new()
    {
        Os = "linux",
        Architecture = RuntimeInformation.OSArchitecture switch
        {
            Architecture.X64 => "amd64",
            Architecture.Arm64 => "arm64",
            Architecture.Arm => "arm",
            Architecture.X86 => "386",
            Architecture.Ppc64le => "ppc64le",
            Architecture.S390x => "s390x",
            Architecture.RiscV64 => "riscv64",
            Architecture.LoongArch64 => "loong64",
            var other => other.ToString().ToLowerInvariant(),
        },
    };
}
