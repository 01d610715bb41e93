namespace Airlock.Tls;

/// <summary>Certificate or key files that cannot be used; the message names the file and the reason.</summary>
public sealed class TlsMaterialException : Exception
{
    public TlsMaterialException(string message)
        : base(message)
    {
    }

    public TlsMaterialException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
