namespace Airlock.Registry.Auth;

/// <summary>
/// An htpasswd or access file that cannot be used. <see cref="Problems"/> holds every problem found,
/// each as <c>file:line: what is wrong</c>, so an operator fixes them all in one pass.
/// </summary>
public sealed class AuthConfigurationException : Exception
{
    public AuthConfigurationException(IReadOnlyList<string> problems)
        : base(string.Join(Environment.NewLine, problems))
    {
        Problems = problems;
    }

    public AuthConfigurationException(string problem, Exception innerException)
        : base(problem, innerException)
    {
        Problems = [problem];
    }

    public IReadOnlyList<string> Problems { get; }
}
