using Grpc.Core;

namespace Airlock.Node.Containerd;

/// <summary>
/// A containerd API call that failed, with containerd's error class (its errdefs travel as gRPC status
/// codes: NotFound, AlreadyExists, FailedPrecondition, Unavailable …) and the operation that failed.
/// </summary>
public sealed class ContainerdException : Exception
{
    public ContainerdException(string operation, StatusCode code, string detail, Exception? inner = null)
        : base($"containerd {operation}: {code}: {detail}", inner)
    {
        Operation = operation;
        Code = code;
    }

    /// <summary>The call that failed, e.g. <c>content.write sha256:…</c>.</summary>
    public string Operation { get; }

    public StatusCode Code { get; }

    internal static ContainerdException From(string operation, RpcException ex) =>
        new(operation, ex.StatusCode, ex.Status.Detail, ex);
}
