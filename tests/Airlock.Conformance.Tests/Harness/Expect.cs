namespace Airlock.Conformance.Tests.Harness;

/// <summary>
/// The status-code matchers the upstream checks use (gomega's Equal, SatisfyAny, BeNumerically), with
/// the exchange in the failure message so a failing check says what the registry answered.
/// </summary>
internal static class Expect
{
    public static void Status(RegistryResponse response, int expected) =>
        Assert.True(response.StatusCode == expected, $"expected {expected}, got {response}");

    public static void AnyOf(RegistryResponse response, params int[] accepted) =>
        Assert.True(accepted.Contains(response.StatusCode), $"expected one of {string.Join(", ", accepted)}, got {response}");

    /// <summary>Any 2xx.</summary>
    public static void Success(RegistryResponse response) =>
        Assert.True(IsSuccess(response), $"expected 2xx, got {response}");

    /// <summary>Any 2xx, or one of the given codes (teardown deletes accept 404/405).</summary>
    public static void SuccessOr(RegistryResponse response, params int[] alsoAccepted) =>
        Assert.True(IsSuccess(response) || alsoAccepted.Contains(response.StatusCode),
            $"expected 2xx or one of {string.Join(", ", alsoAccepted)}, got {response}");

    public static void Header(RegistryResponse response, string name, string expected) =>
        Assert.True(response.Header(name) == expected, $"expected header {name}: {expected}, got \"{response.Header(name)}\" on {response}");

    public static void HeaderPresent(RegistryResponse response, string name) =>
        Assert.True(response.Header(name).Length > 0, $"expected a {name} header on {response}");

    /// <summary>State a previous check left for this one; absent when that check failed.</summary>
    public static T Prior<T>(T? value, string what)
        where T : class =>
        value ?? throw new Xunit.Sdk.XunitException($"{what} is missing: the check that produces it did not complete");

    private static bool IsSuccess(RegistryResponse response) => response.StatusCode is >= 200 and < 300;
}
