using Airlock.Remote;

namespace Airlock.Tests.Remote;

public sealed class AuthChallengeTests
{
    [Fact]
    public void A_Bearer_challenge_yields_realm_service_and_a_scope_with_commas_inside_quotes()
    {
        var challenge = Assert.Single(AuthChallenge.Parse(
            "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"repository:team/app:pull,push\""));
        Assert.True(challenge.IsBearer);
        Assert.Equal("https://auth.example.com/token", challenge.Realm);
        Assert.Equal("registry.example.com", challenge.Service);
        Assert.Equal("repository:team/app:pull,push", challenge.Scope);
    }

    [Fact]
    public void Escaped_quotes_and_backslashes_in_quoted_values_are_unescaped()
    {
        var challenge = Assert.Single(AuthChallenge.Parse("Basic realm=\"say \\\"hi\\\", a\\\\b\""));
        Assert.True(challenge.IsBasic);
        Assert.Equal("say \"hi\", a\\b", challenge.Realm);
    }

    [Fact]
    public void Several_challenges_in_one_header_are_split_at_the_next_scheme()
    {
        var challenges = AuthChallenge.Parse("Basic realm=\"x, y\", Bearer realm=\"https://t/token\", service=reg ,  scope=\"a b\"");
        Assert.Equal(2, challenges.Count);
        Assert.True(challenges[0].IsBasic);
        Assert.Equal("x, y", challenges[0].Realm);
        Assert.True(challenges[1].IsBearer);
        Assert.Equal("https://t/token", challenges[1].Realm);
        Assert.Equal("reg", challenges[1].Service);
        Assert.Equal("a b", challenges[1].Scope);
    }

    [Fact]
    public void Schemes_and_parameter_names_are_case_insensitive_and_unquoted_values_are_tokens()
    {
        var challenge = Assert.Single(AuthChallenge.Parse("bearer REALM=https://auth/token,Service=reg"));
        Assert.True(challenge.IsBearer);
        Assert.Equal("https://auth/token", challenge.Realm);
        Assert.Equal("reg", challenge.Service);
    }

    [Fact]
    public void A_token68_after_a_scheme_is_not_taken_for_another_challenge()
    {
        var challenges = AuthChallenge.Parse("Negotiate abc123==, Basic realm=r");
        Assert.Equal(["Negotiate", "Basic"], challenges.Select(c => c.Scheme));
        Assert.Equal("r", challenges[1].Realm);
    }

    [Fact]
    public void Separate_header_values_each_contribute_challenges_and_an_unterminated_quote_ends_parsing()
    {
        var challenges = AuthChallenge.Parse(["Basic realm=\"one\"", "Bearer realm=\"https://x/token", "Basic realm=two"]);
        Assert.Equal(3, challenges.Count);
        Assert.Equal("one", challenges[0].Realm);
        Assert.Null(challenges[1].Realm);
        Assert.Equal("two", challenges[2].Realm);
    }

    [Fact]
    public void An_empty_header_yields_no_challenge()
    {
        Assert.Empty(AuthChallenge.Parse(""));
        Assert.Empty(AuthChallenge.Parse(" , "));
    }
}
